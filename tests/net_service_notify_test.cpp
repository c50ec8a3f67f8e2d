// The NOTIFY_SOCKET address parser (net/service_notify.hpp); the datagrams themselves are checked
// end to end against the real binary in tests/e2e/systemd_notify_test.cpp.

#include "net/service_notify.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <string>

using parley::net::parse_notify_socket;

TEST_CASE("a NOTIFY_SOCKET path becomes a NUL-terminated unix address") {
  auto addr = parse_notify_socket("/run/systemd/notify");
  REQUIRE(addr);
  CHECK(addr->address.sun_family == AF_UNIX);
  CHECK(std::string{addr->address.sun_path} == "/run/systemd/notify");
  CHECK(addr->length == offsetof(sockaddr_un, sun_path) + std::string{"/run/systemd/notify"}.size() + 1);
}

TEST_CASE("a NOTIFY_SOCKET starting with @ names an abstract socket: a leading NUL, no terminator") {
  auto addr = parse_notify_socket("@parley/notify");
  REQUIRE(addr);
  CHECK(addr->address.sun_path[0] == '\0');
  CHECK(std::string(addr->address.sun_path + 1, 13) == "parley/notify");
  CHECK(addr->length == offsetof(sockaddr_un, sun_path) + 14);
}

TEST_CASE("relative, empty, bare and too long NOTIFY_SOCKET values are refused") {
  CHECK_FALSE(parse_notify_socket(""));
  CHECK_FALSE(parse_notify_socket("@"));
  CHECK_FALSE(parse_notify_socket("/"));
  CHECK_FALSE(parse_notify_socket("run/notify"));
  CHECK_FALSE(parse_notify_socket("vsock:2:1234"));
  std::string longest_path = "/" + std::string(sizeof(sockaddr_un{}.sun_path) - 2, 'p');
  CHECK(parse_notify_socket(longest_path));
  CHECK_FALSE(parse_notify_socket(longest_path + "p"));
  std::string longest_abstract = "@" + std::string(sizeof(sockaddr_un{}.sun_path) - 1, 'a');
  CHECK(parse_notify_socket(longest_abstract));
  CHECK_FALSE(parse_notify_socket(longest_abstract + "a"));
}

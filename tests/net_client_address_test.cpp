// Pure tests of who the client is: CIDR matching and the X-Forwarded-For walk behind trusted
// proxies.

#include "net/client_address.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley::net;
namespace ip = boost::asio::ip;

namespace {

ip::address addr(const char* text) {
  return ip::make_address(text);
}

trusted_proxies trusting(std::vector<std::string> entries) {
  std::vector<std::string> invalid;
  trusted_proxies proxies{entries, invalid};
  REQUIRE(invalid.empty());
  return proxies;
}

} // namespace

TEST_CASE("networks match by prefix, IPv4 and IPv6, plain addresses exactly") {
  auto ten = parse_network("10.0.0.0/8");
  REQUIRE(ten);
  CHECK(ten->contains(addr("10.200.3.4")));
  CHECK_FALSE(ten->contains(addr("11.0.0.1")));
  CHECK(ten->contains(addr("::ffff:10.1.2.3")));  // IPv4-mapped counts as IPv4
  CHECK_FALSE(ten->contains(addr("::1")));

  auto odd = parse_network("192.168.1.128/25");
  REQUIRE(odd);
  CHECK(odd->contains(addr("192.168.1.200")));
  CHECK_FALSE(odd->contains(addr("192.168.1.127")));

  auto one = parse_network("127.0.0.1");
  REQUIRE(one);
  CHECK(one->contains(addr("127.0.0.1")));
  CHECK_FALSE(one->contains(addr("127.0.0.2")));

  auto v6 = parse_network("2001:db8::/32");
  REQUIRE(v6);
  CHECK(v6->contains(addr("2001:db8:ffff::1")));
  CHECK_FALSE(v6->contains(addr("2001:db9::1")));
  CHECK_FALSE(v6->contains(addr("32.1.13.184")));

  auto all = parse_network("0.0.0.0/0");
  REQUIRE(all);
  CHECK(all->contains(addr("203.0.113.9")));
}

TEST_CASE("limits count IPv4 addresses alone and IPv6 addresses by their /64") {
  CHECK(limit_key(addr("198.51.100.7")) == addr("198.51.100.7"));
  CHECK(limit_key(addr("::ffff:198.51.100.7")) == addr("198.51.100.7"));
  CHECK(limit_key(addr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")) == addr("2001:db8:1:2::"));
  CHECK(limit_key(addr("2001:db8:1:2::1")) == limit_key(addr("2001:db8:1:2:ffff::9")));
  CHECK(limit_key(addr("2001:db8:1:3::1")) != limit_key(addr("2001:db8:1:2::1")));
}

TEST_CASE("malformed networks are refused and listed") {
  CHECK_FALSE(parse_network(""));
  CHECK_FALSE(parse_network("10.0.0.0/33"));
  CHECK_FALSE(parse_network("::/129"));
  CHECK_FALSE(parse_network("10.0.0.0/"));
  CHECK_FALSE(parse_network("10.0.0.0/8x"));
  CHECK_FALSE(parse_network("proxy.example"));
  std::vector<std::string> invalid;
  trusted_proxies proxies{{"10.0.0.1", "nonsense", "fd00::/8"}, invalid};
  CHECK(invalid == std::vector<std::string>{"nonsense"});
  CHECK(proxies.trusts(addr("10.0.0.1")));
  CHECK(proxies.trusts(addr("fd12::5")));
}

TEST_CASE("X-Forwarded-For is ignored unless the peer is a trusted proxy") {
  auto proxies = trusting({"10.0.0.1"});
  CHECK(client_address(addr("203.0.113.7"), {"198.51.100.1"}, proxies) == addr("203.0.113.7"));
  CHECK(client_address(addr("203.0.113.7"), {}, trusted_proxies{}) == addr("203.0.113.7"));
  CHECK(client_address(addr("203.0.113.7"), {"198.51.100.1"}, trusted_proxies{}) ==
        addr("203.0.113.7"));
}

TEST_CASE("behind trusted proxies the client is the first untrusted address from the right") {
  auto proxies = trusting({"10.0.0.0/8", "fd00::/8"});
  auto proxy = addr("10.0.0.1");
  // The proxy appended what it saw; a forged entry on the left is not believed.
  CHECK(client_address(proxy, {"1.1.1.1, 198.51.100.1"}, proxies) == addr("198.51.100.1"));
  // Trusted hops (a chain of our own proxies) are skipped.
  CHECK(client_address(proxy, {"198.51.100.1, 10.0.0.2, 10.0.0.3"}, proxies) == addr("198.51.100.1"));
  // Several headers are one list, in order.
  CHECK(client_address(proxy, {"198.51.100.1", "10.0.0.2"}, proxies) == addr("198.51.100.1"));
  CHECK(client_address(proxy, {"1.1.1.1", "198.51.100.1"}, proxies) == addr("198.51.100.1"));
  // IPv6, with and without brackets and ports; IPv4 with a port.
  CHECK(client_address(addr("fd00::1"), {"2001:db8::5"}, proxies) == addr("2001:db8::5"));
  CHECK(client_address(proxy, {"[2001:db8::5]:4711"}, proxies) == addr("2001:db8::5"));
  CHECK(client_address(proxy, {" 198.51.100.1:4711 "}, proxies) == addr("198.51.100.1"));
  // IPv4-mapped peers are IPv4 peers.
  CHECK(client_address(addr("::ffff:10.0.0.1"), {"198.51.100.1"}, proxies) == addr("198.51.100.1"));
  // Without the header, the proxy itself is the client.
  CHECK(client_address(proxy, {}, proxies) == proxy);
  // Only trusted addresses: the leftmost is as far as the chain goes.
  CHECK(client_address(proxy, {"10.0.0.9, 10.0.0.2"}, proxies) == addr("10.0.0.9"));
}

TEST_CASE("a malformed X-Forwarded-For entry stops the walk at the last trusted hop") {
  auto proxies = trusting({"10.0.0.0/8"});
  auto proxy = addr("10.0.0.1");
  CHECK(client_address(proxy, {"unknown"}, proxies) == proxy);
  CHECK(client_address(proxy, {""}, proxies) == proxy);
  CHECK(client_address(proxy, {"198.51.100.1, garbage, 10.0.0.2"}, proxies) == addr("10.0.0.2"));
  CHECK(client_address(proxy, {"198.51.100.1,,"}, proxies) == proxy);
  CHECK(client_address(proxy, {"[2001:db8::5"}, proxies) == proxy);
  // Garbage left of the client does not matter: the walk stops at the first untrusted address.
  CHECK(client_address(proxy, {"garbage, 198.51.100.1"}, proxies) == addr("198.51.100.1"));
}

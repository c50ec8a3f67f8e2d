// Pure tests of the HTTP refusals: the Host allow-list against DNS rebinding and the status a
// failed request read gets.

#include "net/host_check.hpp"
#include "net/http_refusal.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley::net;
namespace http = boost::beast::http;

TEST_CASE("the Host header must name an allowed host, on any port unless one is given") {
  std::vector<std::string> local{"localhost", "127.0.0.1", "[::1]"};
  CHECK(host_allowed("localhost:8080", local));
  CHECK(host_allowed("LocalHost:8080", local));
  CHECK(host_allowed("localhost.:8080", local));
  CHECK(host_allowed("localhost", local));
  CHECK(host_allowed("127.0.0.1:8080", local));
  CHECK(host_allowed("[::1]:8080", local));
  CHECK(host_allowed("[::1]", local));
  CHECK_FALSE(host_allowed("evil.example:8080", local));
  CHECK_FALSE(host_allowed("localhost.evil.example", local));
  CHECK_FALSE(host_allowed("127.0.0.2:8080", local));
  CHECK_FALSE(host_allowed("", local));
  CHECK_FALSE(host_allowed("::1", local));  // IPv6 without brackets is no valid Host

  std::vector<std::string> with_port{"chat.example.com:443"};
  CHECK(host_allowed("chat.example.com:443", with_port));
  CHECK_FALSE(host_allowed("chat.example.com:8443", with_port));
  CHECK_FALSE(host_allowed("chat.example.com", with_port));
}

TEST_CASE("an empty Host allow-list answers any host") {
  CHECK(host_allowed("evil.example:8080", {}));
  CHECK(host_allowed("", {}));
}

TEST_CASE("a failed request read gets the status of its cause, or none when the peer left") {
  auto status_of = [](boost::beast::error_code ec, bool line_read) {
    auto refusal = refusal_for_read_error(ec, line_read);
    return refusal ? static_cast<unsigned>(refusal->status) : 0u;
  };
  CHECK(status_of(http::error::header_limit, false) == 414);
  CHECK(status_of(http::error::header_limit, true) == 431);
  CHECK(status_of(http::error::body_limit, true) == 413);
  CHECK(status_of(http::error::bad_target, false) == 400);
  CHECK(status_of(http::error::bad_method, false) == 400);
  CHECK(status_of(http::error::bad_field, true) == 400);
  CHECK(status_of(http::error::bad_content_length, true) == 400);
  CHECK(status_of(http::error::end_of_stream, false) == 0);
  CHECK(status_of(http::error::partial_message, true) == 0);
  CHECK(status_of(boost::asio::error::connection_reset, false) == 0);
  CHECK(static_cast<unsigned>(request_timeout_refusal().status) == 408);
}

TEST_CASE("a refusal response closes the connection") {
  auto res = refusal_response({http::status::uri_too_long, "uri_too_long", "too long\n"});
  CHECK(res.result() == http::status::uri_too_long);
  CHECK_FALSE(res.keep_alive());
  CHECK(res[http::field::connection] == "close");
  CHECK(res.body() == "too long\n");
}

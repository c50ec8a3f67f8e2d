#include "net/http_refusal.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>

namespace parley::net {

namespace http = boost::beast::http;

std::optional<http_refusal> refusal_for_read_error(boost::beast::error_code ec,
                                                   bool request_line_read) {
  if (ec == http::error::header_limit) {
    if (!request_line_read)
      return http_refusal{http::status::uri_too_long, "uri_too_long", "request target too long\n"};
    return http_refusal{http::status::request_header_fields_too_large, "header_too_large",
                        "request header too large\n"};
  }
  if (ec == http::error::body_limit)
    return http_refusal{http::status::payload_too_large, "body_too_large", "request body too large\n"};
  // The peer is gone or went quiet half-way (it closed its side): no one reads an answer.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset ||
      ec == boost::asio::error::operation_aborted || ec == boost::beast::error::timeout)
    return std::nullopt;
  // Every other parser error: a malformed request line, field or body framing, a NUL byte.
  if (ec.category() == http::make_error_code(http::error::bad_target).category())
    return http_refusal{http::status::bad_request, "bad_request", "bad request\n"};
  return std::nullopt;
}

http_refusal request_timeout_refusal() {
  return {http::status::request_timeout, "timeout", "request not received in time\n"};
}

http::response<http::string_body> refusal_response(const http_refusal& refusal, unsigned version) {
  http::response<http::string_body> res{refusal.status, version};
  res.set(http::field::server, "parley");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(false);
  res.body() = std::string{refusal.message};
  res.prepare_payload();
  return res;
}

} // namespace parley::net

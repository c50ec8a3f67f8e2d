#include "net/websocket_handshake.hpp"

#include <boost/beast/http/field.hpp>

#include <openssl/evp.h>

#include <array>

namespace parley::net {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view handshake_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

/// A 16-byte nonce in base64 is 22 characters and "==" (RFC 6455 section 4.1, item 7).
bool is_valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==")
    return false;
  for (std::size_t i = 0; i < 22; ++i)
    if (!is_base64_char(key[i]))
      return false;
  // The last character before the padding carries 4 unused bits, which must be zero.
  static constexpr std::string_view last_allowed = "AQgw";
  return last_allowed.find(key[21]) != std::string_view::npos;
}

} // namespace

handshake_problem check_handshake(const http::request<http::string_body>& req) {
  if (req[http::field::sec_websocket_version] != "13")
    return {http::status::upgrade_required, "WebSocket version 13 required\n"};
  auto key = req[http::field::sec_websocket_key];
  if (!is_valid_key(std::string_view{key.data(), key.size()}))
    return {http::status::bad_request, "invalid Sec-WebSocket-Key\n"};
  return {};
}

subprotocol_offer offered_subprotocols(std::string_view header) {
  subprotocol_offer offer;
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (item == parley_subprotocol)
      offer.parley = true;
    else if (item.substr(0, token_subprotocol_prefix.size()) == token_subprotocol_prefix)
      offer.token = std::string{item.substr(token_subprotocol_prefix.size())};
    if (comma == std::string_view::npos)
      break;
    header.remove_prefix(comma + 1);
  }
  return offer;
}

std::string websocket_accept(std::string_view key) {
  std::string input;
  input.reserve(key.size() + handshake_guid.size());
  input.append(key).append(handshake_guid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha1(), nullptr);
  // Base64 of a 20-byte digest is 28 characters; EVP_EncodeBlock adds a terminating NUL.
  std::array<unsigned char, 32> encoded{};
  auto n = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_size));
  return std::string{reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(n)};
}

http::response<http::empty_body> switching_protocols(const http::request<http::string_body>& req) {
  http::response<http::empty_body> res{http::status::switching_protocols, req.version()};
  res.set(http::field::server, "parley");
  res.set(http::field::upgrade, "websocket");
  res.set(http::field::connection, "Upgrade");
  auto key = req[http::field::sec_websocket_key];
  res.set(http::field::sec_websocket_accept, websocket_accept(std::string_view{key.data(), key.size()}));
  return res;
}

} // namespace parley::net

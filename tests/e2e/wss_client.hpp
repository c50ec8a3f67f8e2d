#pragma once

// A WebSocket-over-TLS test client whose every step has a deadline (the TCP stream's timeout), for
// tests against a TLS port: Parley's own ([tls], tls_test.cpp) or nginx in front of it
// (nginx_test.cpp). Certificates are not verified: the tests make self-signed ones and check what
// they need themselves.

#include "harness.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <optional>
#include <string>

namespace parley::e2e {

/// What a test client offers in its TLS handshake.
struct tls_offer {
  int min_version = TLS1_2_VERSION;
  int max_version = TLS1_3_VERSION;
  std::string tls12_ciphers;  ///< OpenSSL's defaults when empty
};

/// How a wss_client connects and what its upgrade request says.
struct wss_options {
  /// The local address the client connects from, e.g. "127.0.0.3" (any of 127.0.0.0/8 works on
  /// Linux); the kernel picks when empty.
  std::string source_address;
  /// The Host header; "127.0.0.1:<port>" when empty.
  std::string host;
  /// Sent as the Origin header when not empty (what a browser sends).
  std::string origin;
  /// Sent as X-Forwarded-For by the client itself when not empty: a forgery a proxy must not let
  /// through as the truth.
  std::string forwarded_for;
};

class wss_client {
public:
  explicit wss_client(const tls_offer& offer = {}) : ctx_(boost::asio::ssl::context::tls_client) {
    auto* native = ctx_.native_handle();
    if (offer.min_version < TLS1_2_VERSION) {
      // Debian's OpenSSL will not even offer TLS 1.0/1.1 at its default security level.
      SSL_CTX_set_security_level(native, 0);
      SSL_CTX_set_cipher_list(native, "DEFAULT@SECLEVEL=0");
    }
    SSL_CTX_set_min_proto_version(native, offer.min_version);
    SSL_CTX_set_max_proto_version(native, offer.max_version);
    if (!offer.tls12_ciphers.empty())
      SSL_CTX_set_cipher_list(native, offer.tls12_ciphers.c_str());
    ctx_.set_verify_mode(boost::asio::ssl::verify_none);
    ws_.emplace(ioc_, ctx_);
  }

  /// TCP connect (from `source_address` when given) and TLS handshake.
  boost::beast::error_code handshake_tls(uint16_t port, const std::string& source_address = {}) {
    namespace asio = boost::asio;
    using tcp = asio::ip::tcp;
    auto& tcp_layer = boost::beast::get_lowest_layer(*ws_);
    if (!source_address.empty()) {
      boost::beast::error_code ec;
      tcp_layer.socket().open(tcp::v4(), ec);
      if (!ec)
        tcp_layer.socket().bind(tcp::endpoint{asio::ip::make_address(source_address), 0}, ec);
      if (ec)
        return ec;
    }
    tcp_layer.expires_after(default_wait);
    auto ec = run([&](auto done) {
      tcp_layer.async_connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port}, done);
    });
    if (ec)
      return ec;
    tcp_layer.expires_after(default_wait);
    return run([&](auto done) {
      ws_->next_layer().async_handshake(asio::ssl::stream_base::client, done);
    });
  }

  /// TLS, then the upgrade request for /ws?name=<name>. Returns the HTTP status of the answer:
  /// 101 when the WebSocket is open, else the refusal (403, 421, 429, ...). Fails the test on
  /// transport errors.
  unsigned upgrade(uint16_t port, const std::string& name, const wss_options& opts = {}) {
    auto status = try_upgrade(port, name, opts);
    REQUIRE_MESSAGE(status, "TLS connect to port " << port << " failed: " << transport_error_);
    return *status;
  }

  /// Like upgrade(), but a failed TCP connect or TLS handshake gives nullopt (for clients that
  /// reconnect, as browsers do) instead of failing the test.
  std::optional<unsigned> try_upgrade(uint16_t port, const std::string& name, const wss_options& opts = {}) {
    namespace websocket = boost::beast::websocket;
    auto tls_ec = handshake_tls(port, opts.source_address);
    if (tls_ec) {
      transport_error_ = tls_ec.message();
      return std::nullopt;
    }
    ws_->set_option(websocket::stream_base::decorator([opts](websocket::request_type& req) {
      if (!opts.origin.empty())
        req.set(boost::beast::http::field::origin, opts.origin);
      if (!opts.forwarded_for.empty())
        req.set("X-Forwarded-For", opts.forwarded_for);
    }));
    boost::beast::get_lowest_layer(*ws_).expires_after(default_wait);
    auto host = opts.host.empty() ? "127.0.0.1:" + std::to_string(port) : opts.host;
    websocket::response_type response;
    auto ec = run([&](auto done) {
      ws_->async_handshake(response, host, "/ws?name=" + name, done);
    });
    REQUIRE_MESSAGE((!ec || ec == websocket::error::upgrade_declined),
                    "wss upgrade failed: " << ec.message());
    return response.result_int();
  }

  /// The whole way to a chat: TLS, the upgrade, the welcome frame (which it returns).
  json connect(uint16_t port, const std::string& name, const wss_options& opts = {}) {
    auto status = upgrade(port, name, opts);
    REQUIRE_MESSAGE(status == 101, name << ": the upgrade was answered " << status);
    return next();
  }

  void send(const json& frame) {
    boost::beast::get_lowest_layer(*ws_).expires_after(default_wait);
    auto text = frame.dump();
    auto ec = run([&](auto done) { ws_->async_write(boost::asio::buffer(text), done); });
    REQUIRE_MESSAGE(!ec, "wss write failed: " << ec.message());
  }

  /// Like send(), but reports a failed write (the connection ended) instead of failing the test.
  bool try_send(const json& frame) {
    boost::beast::get_lowest_layer(*ws_).expires_after(default_wait);
    auto text = frame.dump();
    return !run([&](auto done) { ws_->async_write(boost::asio::buffer(text), done); });
  }

  json next() {
    boost::beast::get_lowest_layer(*ws_).expires_after(default_wait);
    buffer_.clear();
    auto ec = run([&](auto done) { ws_->async_read(buffer_, done); });
    REQUIRE_MESSAGE(!ec, "wss read failed: " << ec.message());
    return json::parse(boost::beast::buffers_to_string(buffer_.data()));
  }

  /// The next frame, or nullopt when the connection ended (or nothing came within `timeout`,
  /// which ends it too: the stream's timer closes the socket).
  std::optional<json> try_next(millis timeout = default_wait) {
    boost::beast::get_lowest_layer(*ws_).expires_after(timeout);
    buffer_.clear();
    auto ec = run([&](auto done) { ws_->async_read(buffer_, done); });
    if (ec)
      return std::nullopt;
    return json::parse(boost::beast::buffers_to_string(buffer_.data()));
  }

  /// Skips frames until one has this type (and, when given, this text).
  json next_of_type(const std::string& type, const std::string& text = {}) {
    for (int i = 0; i < 50; ++i)
      if (auto f = next(); f["type"] == type && (text.empty() || f["text"] == text))
        return f;
    FAIL("no " << type << " frame within 50 frames");
    return {};
  }

  /// The common name of the certificate the server presented.
  std::string peer_common_name() {
    X509* cert = SSL_get1_peer_certificate(ws_->next_layer().native_handle());
    if (cert == nullptr)
      return {};
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
    X509_free(cert);
    return name;
  }

  /// The negotiated protocol version, e.g. "TLSv1.3".
  std::string version() { return SSL_get_version(ws_->next_layer().native_handle()); }

private:
  template <class Start>
  boost::beast::error_code run(Start start) {
    boost::beast::error_code result;
    start([&result](boost::beast::error_code ec, auto&&...) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  boost::asio::io_context ioc_;
  boost::asio::ssl::context ctx_;
  std::optional<boost::beast::websocket::stream<
    boost::beast::ssl_stream<boost::beast::tcp_stream>>> ws_;
  boost::beast::flat_buffer buffer_;
  std::string transport_error_;  ///< why the last try_upgrade failed
};

} // namespace parley::e2e

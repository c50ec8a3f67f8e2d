#include "net/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace parley::net {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2: ephemeral key exchange (forward secrecy) and AEAD ciphers only. TLS 1.3's suites are
// all of that kind already and keep OpenSSL's defaults.
constexpr const char* tls12_ciphers =
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

[[noreturn]] void fail(const std::string& what, const boost::system::error_code& ec) {
  throw std::runtime_error(what + ": " + ec.message());
}

} // namespace

std::shared_ptr<ssl::context> make_tls_context(const std::string& certificate_file,
                                               const std::string& key_file) {
  if (certificate_file.empty() || key_file.empty())
    throw std::runtime_error("tls.certificate and tls.key must both be set");
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  auto* native = ctx->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1)
    throw std::runtime_error("cannot restrict TLS to versions 1.2 and 1.3");
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1)
    throw std::runtime_error("cannot set the TLS 1.2 cipher list");
  // The server's preference decides, renegotiation and compression are off, and an idle connection
  // gives its read and write buffers back to the allocator (about 34 KiB each otherwise).
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(certificate_file, ec);
  if (ec)
    fail("cannot load the TLS certificate '" + certificate_file + "'", ec);
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec)
    fail("cannot load the TLS key '" + key_file + "'", ec);
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("the TLS key '" + key_file + "' does not match the certificate '" +
                             certificate_file + "'");
  return ctx;
}

tls_credentials::tls_credentials(std::string certificate_file, std::string key_file)
  : certificate_file_(std::move(certificate_file)),
    key_file_(std::move(key_file)),
    current_(make_tls_context(certificate_file_, key_file_)) {
  // nop
}

std::shared_ptr<ssl::context> tls_credentials::current() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return current_;
}

std::optional<std::string> tls_credentials::reload() {
  try {
    auto fresh = make_tls_context(certificate_file_, key_file_);
    std::lock_guard<std::mutex> guard{mutex_};
    current_ = std::move(fresh);
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string{e.what()};
  }
}

} // namespace parley::net

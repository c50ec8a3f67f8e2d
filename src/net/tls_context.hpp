#pragma once

// The server's TLS settings: certificate chain and key from files, TLS 1.2 and 1.3 only, forward
// secrecy and AEAD ciphers only. Reloadable (SIGHUP) while connections run: new connections get the
// new context; open ones keep the one they were made with.

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace parley::net {

/// Builds a server context from a PEM certificate chain and a PEM private key. Throws
/// std::runtime_error saying which file is wrong and why.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& certificate_file,
                                                            const std::string& key_file);

/// The current TLS context of a server (thread-safe).
class tls_credentials {
public:
  /// Loads the files now; throws like make_tls_context.
  tls_credentials(std::string certificate_file, std::string key_file);

  /// The context for a new connection.
  std::shared_ptr<boost::asio::ssl::context> current() const;

  /// Reads the files again. On failure the old context stays and the error is returned.
  std::optional<std::string> reload();

private:
  std::string certificate_file_;
  std::string key_file_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> current_;
};

} // namespace parley::net

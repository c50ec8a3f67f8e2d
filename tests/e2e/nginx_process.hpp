#pragma once

// Debian's nginx as a child process of a test: in the foreground (daemon off), with its pid file,
// logs and temporary files all under a directory the test owns, on loopback ports. Used by
// nginx_test.cpp to run deploy/nginx/parley.conf in front of a real Parley.

#include "harness.hpp"

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace parley::e2e {

/// Where the tests expect Debian's nginx (package nginx; scripts/install-deploy-test-deps.sh).
inline constexpr const char* nginx_binary = "/usr/sbin/nginx";

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
uint16_t free_loopback_port();

/// A self-signed certificate for "localhost" (EC P-256, one day) and its key, written to these
/// paths with the openssl command; fails the test if openssl cannot make them.
void make_localhost_certificate(const std::string& certificate, const std::string& key);

/// A main nginx.conf that keeps everything inside `prefix` (pid, error and access logs, the five
/// temporary paths) and includes `http_snippet` inside its http block, as Debian's nginx.conf
/// includes conf.d/*.conf.
std::string nginx_main_config(const std::string& prefix, const std::string& http_snippet);

/// `nginx -p <prefix> -c <prefix>/nginx.conf -e <prefix>/error.log -g 'daemon off; master_process
/// off;'`, started by the constructor, which returns once `port` accepts connections; stopped and
/// reaped by the destructor. Fails the test with a clear message when nginx is not installed, rejects the
/// configuration or does not come up.
class nginx_process {
public:
  /// `prefix` must exist and hold nginx.conf.
  nginx_process(const std::string& prefix, uint16_t port, millis startup_timeout = 10s);
  ~nginx_process();
  nginx_process(const nginx_process&) = delete;
  nginx_process& operator=(const nginx_process&) = delete;

  /// nginx's error log and its stderr so far (for failure messages).
  std::string log() const;

private:
  void stop();

  std::string prefix_;
  pid_t pid_ = -1;
};

/// The output of `nginx -t` on `prefix`/nginx.conf, and whether it passed.
struct nginx_check {
  bool ok = false;
  std::string output;
};
nginx_check check_nginx_config(const std::string& prefix);

} // namespace parley::e2e

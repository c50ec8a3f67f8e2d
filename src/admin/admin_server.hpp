#pragma once

// The admin listener: plain HTTP/1.1 on its own address and port ([admin]), with its own
// io_context and one thread, so that operators reach /metrics, /readyz and the admin API even when
// the public listener is saturated. Every request goes to admin_api; answers that need actors
// come back through a post to this thread, never by waiting.

#include "admin/admin_api.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace parley::admin {

/// Where and how the admin listener listens.
struct listener_options {
  std::string address = "127.0.0.1";
  uint16_t port = 9090;  ///< 0 picks a free port
  /// A request must arrive within this (its head and body); an idle keep-alive connection is
  /// closed after it too.
  std::chrono::milliseconds request_timeout{10000};
  /// How long a request may wait for the actors before it gets 503 (the backend's own timeouts
  /// come first; this is the backstop).
  std::chrono::milliseconds answer_timeout{5000};
  std::size_t max_connections = 64;      ///< more are closed at once: operators need few
  std::size_t max_body_bytes = 16 * 1024;
};

class admin_server {
public:
  admin_server(listener_options opts, std::shared_ptr<admin_api> api);
  ~admin_server();

  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  /// Binds, starts the thread and logs "parley admin listening on <address>:<port>" (on stdout,
  /// flushed). False, after logging why, when it cannot listen.
  bool start();

  /// The port actually bound (0 before start()).
  uint16_t port() const noexcept;

  /// Stops accepting, ends every connection and joins the thread. Idempotent.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace parley::admin

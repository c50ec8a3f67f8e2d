#pragma once

// What the admin listener answers, without the sockets: route, token, method, body, then the
// backend or the server hooks, then one response. The HTTP side (admin_server.cpp) turns requests
// into admin_request and admin_response into bytes; tests call handle() directly with a fake
// backend.

#include "admin/admin_backend.hpp"
#include "admin/admin_json.hpp"
#include "admin/admin_routes.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace parley::admin {

/// What the admin listener reads from and asks of the public server. main.cpp wires them to
/// net::server, so this code never depends on its internals. Called on the admin thread only.
struct server_hooks {
  std::function<bool()> draining;                          ///< the node drains (or shuts down)
  std::function<std::size_t()> connections;               ///< WebSocket connections open
  std::function<std::size_t()> max_connections;           ///< the limit; 0: none
  std::function<void(std::chrono::milliseconds)> start_drain;  ///< closes clients over a period
};

/// One request as the API sees it.
struct admin_request {
  std::string method;         ///< "GET", "HEAD", "POST", ...
  std::string target;         ///< path and query
  std::string authorization;  ///< the Authorization header ("" when absent)
  std::string body;
};

/// One answer.
struct admin_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra header fields
};

/// The API's settings.
struct api_options {
  std::string token;     ///< empty: /admin/* answers 403
  std::string web_root;  ///< the admin page's directory
  body_limits limits;
  std::chrono::milliseconds default_drain_period{30000};
};

class admin_api : public std::enable_shared_from_this<admin_api> {
public:
  admin_api(api_options opts, std::shared_ptr<admin_backend> backend, server_hooks hooks);

  /// Answers one request. `respond` runs exactly once: at once for what needs no actor, else
  /// later on a backend thread. Never throws.
  void handle(const admin_request& req, std::function<void(admin_response)> respond);

private:
  using responder = std::function<void(admin_response)>;

  void dispatch(const admin_request& req, const route& r, responder respond);
  void readiness(bool for_metrics, responder respond);
  void serve_page(const admin_request& req, responder respond);

  api_options opts_;
  std::shared_ptr<admin_backend> backend_;
  server_hooks hooks_;
};

/// A JSON error answer: {"error":code,"message":message}.
admin_response error_response(unsigned status, std::string_view code, std::string_view message);

} // namespace parley::admin

#include "admin/admin_setup.hpp"

#include "admin/actor_backend.hpp"

#include <boost/asio/ip/address.hpp>

#include <spdlog/spdlog.h>

namespace parley::admin {

namespace {

/// How long the API waits for the actors; gathers give each room or session half of it.
constexpr auto actor_timeout = std::chrono::seconds(2);

bool is_loopback(const std::string& address) {
  boost::system::error_code ec;
  auto parsed = boost::asio::ip::make_address(address, ec);
  return !ec && parsed.is_loopback();
}

} // namespace

std::unique_ptr<admin_server> make_admin_server(const settings& cfg, std::string token,
                                                caf::actor_system& sys, server_hooks hooks,
                                                std::chrono::milliseconds default_drain_period) {
  if (token.empty())
    spdlog::info("admin API disabled: set [admin] token or token_file (/metrics, /healthz and /readyz "
                 "still answer on the admin listener)");
  if (!is_loopback(cfg.admin.address))
    spdlog::warn("[admin] address {} is not loopback: /metrics, /healthz and /readyz answer anyone "
                 "who reaches it, without a token; firewall it", cfg.admin.address);
  api_options api;
  api.token = std::move(token);
  api.web_root = cfg.admin.web_root;
  api.limits.max_notice_bytes = cfg.protocol.max_text_bytes;
  api.default_drain_period = default_drain_period;
  auto backend = std::make_shared<actor_backend>(sys, actor_timeout);
  listener_options listen;
  listen.address = cfg.admin.address;
  listen.port = cfg.admin.port;
  // The API's own timeouts answer first; this backstop only catches a request that got lost.
  listen.answer_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(actor_timeout) * 2;
  return std::make_unique<admin_server>(
    listen, std::make_shared<admin_api>(std::move(api), std::move(backend), std::move(hooks)));
}

} // namespace parley::admin

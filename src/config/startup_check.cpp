#include "config/startup_check.hpp"

#include "auth/auth_config.hpp"
#include "config/app_config.hpp"
#include "net/client_address.hpp"
#include "net/tls_context.hpp"

#include <boost/asio/ip/address.hpp>

#include <exception>
#include <stdexcept>

namespace parley {

namespace {

void check_auth(const auth_settings& s, startup_check& out) {
  try {
    out.permissions = std::make_shared<const auth::room_permissions>(s.room_rules);
  } catch (const std::invalid_argument& e) {
    out.problems.push_back(std::string{"invalid [auth] room_rules: "} + e.what());
  }
  if (!s.jwt())
    return;
  try {
    out.verifier = std::make_shared<const auth::jwt_verifier>(auth::make_verifier_settings(s));
  } catch (const auth::auth_config_error& e) {
    out.problems.push_back(std::string{"[auth] cannot sign users in: "} + e.what());
  }
}

void check_server(const settings& s, startup_check& out) {
  std::vector<std::string> invalid;
  net::trusted_proxies proxies{s.server.trusted_proxies, invalid};
  for (const auto& entry : invalid)
    out.problems.push_back("server.trusted_proxies: \"" + entry
                           + "\" is not an IPv4 or IPv6 address or CIDR network");
  boost::system::error_code ec;
  boost::asio::ip::make_address(s.server.address, ec);
  if (ec)
    out.problems.push_back("server.address: \"" + s.server.address
                           + "\" is not an IPv4 or IPv6 address (" + ec.message() + ")");
  if (s.tls.enabled()) {
    try {
      net::make_tls_context(s.tls.certificate, s.tls.key);
    } catch (const std::exception& e) {
      out.problems.push_back(std::string{"[tls] cannot serve TLS: "} + e.what());
    }
  }
}

} // namespace

startup_check check_startup(const settings& values) {
  startup_check out;
  out.problems = value_problems(values);
  check_auth(values.auth, out);
  check_server(values, out);
  return out;
}

} // namespace parley

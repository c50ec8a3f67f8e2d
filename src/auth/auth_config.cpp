#include "auth/auth_config.hpp"

#include <fstream>
#include <iterator>

namespace parley::auth {

namespace {

std::string read_file(const std::string& path, const char* setting) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw auth_config_error(std::string{"[auth] "} + setting + ": cannot read " + path);
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

} // namespace

std::string read_secret(const auth_settings& cfg) {
  if (!cfg.secret.empty() && !cfg.secret_file.empty())
    throw auth_config_error("[auth] set secret or secret_file, not both");
  if (!cfg.secret.empty())
    return cfg.secret;
  if (cfg.secret_file.empty())
    throw auth_config_error("[auth] HS256 needs secret or secret_file");
  auto secret = read_file(cfg.secret_file, "secret_file");
  // Files written with echo end in a newline that is no part of the secret.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
    secret.pop_back();
  return secret;
}

verifier_settings make_verifier_settings(const auth_settings& cfg) {
  verifier_settings out;
  auto alg = algorithm_from_string(cfg.algorithm);
  if (!alg)
    throw auth_config_error("[auth] algorithm must be HS256, RS256, ES256 or EdDSA, not \""
                            + cfg.algorithm + "\"");
  out.algorithm = *alg;
  if (out.algorithm == jwt_algorithm::hs256) {
    out.secret = read_secret(cfg);
  } else {
    if (cfg.public_key.empty())
      throw auth_config_error("[auth] " + cfg.algorithm + " needs public_key (a PEM file)");
    out.public_key_pem = read_file(cfg.public_key, "public_key");
  }
  out.issuer = cfg.issuer;
  out.audience = cfg.audience;
  out.leeway = std::chrono::duration_cast<std::chrono::seconds>(cfg.leeway);
  out.roles_claim = cfg.roles_claim;
  out.rooms_claim = cfg.rooms_claim;
  return out;
}

} // namespace parley::auth

#pragma once

// `parley token`: mints a signed token for local use and tests, with the key and claim names the
// server itself is configured with ([auth] in config.ini). docs/auth.md shows how to use it.
//
// The work is split so that tests can run each step without a process: parse the arguments,
// read the signing settings from the configuration, build the token.

#include "auth/jwt.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::auth {

/// What the command line asked for.
struct token_options {
  std::string sub;                      ///< --sub: the user id (required)
  std::string name;                     ///< --name: display name
  std::vector<std::string> roles;       ///< --role, repeatable or a comma list
  std::vector<std::string> rooms;       ///< --room, repeatable or a comma list
  std::chrono::seconds ttl{3600};       ///< --ttl: lifetime, e.g. 90s, 15m, 1h, 7d
  std::string config_path = "config.ini";  ///< --config
  bool config_given = false;            ///< --config was on the command line: it must exist
  std::string secret;                   ///< --secret: overrides the configured HS256 secret
  std::string key_file;                 ///< --key: PEM private key for RS256, ES256, EdDSA
  bool help = false;                    ///< --help
};

/// The key and claim names to sign with, from the configuration and the options.
struct token_signing {
  jwt_algorithm algorithm = jwt_algorithm::hs256;
  std::string key;       ///< the HS256 secret or the PEM private key text
  std::string issuer;    ///< written as "iss" when non-empty
  std::string audience;  ///< written as "aud" when non-empty
  std::string roles_claim = "roles";
  std::string rooms_claim = "rooms";
};

/// A lifetime such as "3600", "90s", "15m", "1h" or "7d" (a plain number is seconds); nullopt if
/// it is not one or is not positive.
std::optional<std::chrono::seconds> parse_ttl(std::string_view text);

/// Parses the arguments after "token" ("--sub alice --role moderator ..."; "--opt=value" works
/// too). On failure returns nullopt and sets `error` to a message for the user.
std::optional<token_options> parse_token_options(const std::vector<std::string>& args,
                                                 std::string& error);

/// Reads [auth] from the configuration file and the key it names (or --secret, --key). On
/// failure returns nullopt and sets `error`.
std::optional<token_signing> load_token_signing(const token_options& options, std::string& error);

/// The signed token for `options`, issued at `now` (seconds since the Unix epoch). Throws
/// auth_config_error when the key cannot sign.
std::string make_token(const token_options& options, const token_signing& signing, int64_t now);

/// `parley token ...`: argv[0] is the program and argv[1] "token". Prints the token and a newline
/// to stdout and returns 0, or prints an error to stderr and returns 2.
int run_token_command(int argc, char** argv);

} // namespace parley::auth

#include "auth/token_command.hpp"

#include "config/app_config.hpp"
#include "protocol/codec.hpp"

#include <caf/error.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <utility>

namespace parley::auth {

namespace {

constexpr const char* usage =
  "usage: parley token --sub USER [--name NAME] [--role ROLE]... [--room ROOM]...\n"
  "                    [--ttl 1h] [--config config.ini] [--secret SECRET] [--key private.pem]\n"
  "  --role and --room repeat or take a comma list; --ttl takes s, m, h or d (default 1h).\n"
  "  The algorithm, secret, issuer, audience and claim names come from [auth] in the config.\n";

/// Adds "a,b,c" to `out` as three entries, skipping empty pieces.
void append_list(std::string_view text, std::vector<std::string>& out) {
  while (!text.empty()) {
    auto comma = text.find(',');
    auto piece = text.substr(0, comma);
    if (!piece.empty())
      out.emplace_back(piece);
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
}

/// The whole file, or nullopt if it cannot be read.
std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return std::nullopt;
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

/// A secret file usually ends with the newline an editor or `echo` adds; it is not part of the
/// secret. Only line ends are dropped, as the server does when it reads the same file, so that
/// both sides agree on every other byte.
std::string trim_line_ends(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  return text;
}

} // namespace

std::optional<std::chrono::seconds> parse_ttl(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  int64_t unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  if (text.empty())
    return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    // Ten years is more than any token should live; the cap also keeps exp far from overflow.
    value = value * 10 + (c - '0');
    if (value > 10 * 366 * 86400)
      return std::nullopt;
  }
  value *= unit;
  if (value <= 0 || value > 10 * 366 * 86400)
    return std::nullopt;
  return std::chrono::seconds{value};
}

std::optional<token_options> parse_token_options(const std::vector<std::string>& args,
                                                 std::string& error) {
  token_options options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    // "--sub=alice" and "--sub alice" mean the same.
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      options.help = true;
      continue;
    }
    const bool takes_value = flag == "--sub" || flag == "--name" || flag == "--role"
                             || flag == "--room" || flag == "--ttl" || flag == "--config"
                             || flag == "--secret" || flag == "--key";
    if (!takes_value) {
      error = "unknown option " + flag;
      return std::nullopt;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        error = flag + " needs a value";
        return std::nullopt;
      }
      value = args[++i];
    }
    if (flag == "--sub") {
      options.sub = *value;
    } else if (flag == "--name") {
      options.name = *value;
    } else if (flag == "--role") {
      append_list(*value, options.roles);
    } else if (flag == "--room") {
      append_list(*value, options.rooms);
    } else if (flag == "--ttl") {
      auto ttl = parse_ttl(*value);
      if (!ttl) {
        error = "--ttl takes a positive lifetime such as 90s, 15m, 1h or 7d, not " + *value;
        return std::nullopt;
      }
      options.ttl = *ttl;
    } else if (flag == "--config") {
      options.config_path = *value;
      options.config_given = true;
    } else if (flag == "--secret") {
      options.secret = *value;
    } else if (flag == "--key") {
      options.key_file = *value;
    }
  }
  if (options.help)
    return options;
  // Refuse here what the server would refuse anyway, so a mistake shows now and not at sign-in.
  if (!protocol::is_valid_user_name(options.sub)) {
    error = options.sub.empty() ? "--sub is required"
                                : "--sub must be 1-32 characters of A-Z, a-z, 0-9, '_', '.' or '-'";
    return std::nullopt;
  }
  if (options.name.size() > 64) {
    error = "--name is at most 64 bytes";
    return std::nullopt;
  }
  for (const auto& role : options.roles)
    if (!role_from_string(role)) {
      error = "unknown role " + role + " (readonly, member, moderator, admin)";
      return std::nullopt;
    }
  for (const auto& room : options.rooms)
    if (!protocol::is_valid_room_name(room)) {
      error = "invalid room name " + room;
      return std::nullopt;
    }
  return options;
}

std::optional<token_signing> load_token_signing(const token_options& options, std::string& error) {
  // The server's own configuration reader, so the command signs with exactly what the server
  // verifies with. Without --config a missing config.ini is fine (the defaults apply, and
  // --secret may be enough); CAF would refuse to parse a file that is not there.
  app_config cfg;
  const bool config_exists = static_cast<bool>(std::ifstream{options.config_path});
  if (options.config_given && !config_exists) {
    error = "cannot read " + options.config_path;
    return std::nullopt;
  }
  if (config_exists) {
    std::string program = "parley";
    std::string config_arg = "--config=" + options.config_path;
    char* argv[] = {program.data(), config_arg.data()};
    if (auto problems = cfg.parse_command_line(2, argv); !problems.empty()) {
      error = "invalid configuration " + options.config_path + ": " + problems.front();
      return std::nullopt;
    }
  }
  const auto& auth = cfg.values.auth;

  token_signing signing;
  auto alg = algorithm_from_string(auth.algorithm);
  if (!alg) {
    error = "[auth] algorithm " + auth.algorithm + " is not HS256, RS256, ES256 or EdDSA";
    return std::nullopt;
  }
  signing.algorithm = *alg;
  signing.issuer = auth.issuer;
  signing.audience = auth.audience;
  signing.roles_claim = auth.roles_claim;
  signing.rooms_claim = auth.rooms_claim;

  if (signing.algorithm == jwt_algorithm::hs256) {
    if (!options.secret.empty()) {
      signing.key = options.secret;
    } else if (!auth.secret.empty() && !auth.secret_file.empty()) {
      // The server refuses this ambiguity at start-up; a token signed with either could be wrong.
      error = "[auth] sets both secret and secret_file in " + options.config_path + ": keep one";
      return std::nullopt;
    } else if (!auth.secret.empty()) {
      signing.key = auth.secret;
    } else if (!auth.secret_file.empty()) {
      auto text = read_file(auth.secret_file);
      if (!text) {
        error = "cannot read [auth] secret_file " + auth.secret_file;
        return std::nullopt;
      }
      signing.key = trim_line_ends(std::move(*text));
    } else {
      error = "no HS256 secret: set [auth] secret or secret_file in " + options.config_path
              + ", or pass --secret";
      return std::nullopt;
    }
  } else {
    // The server holds only the public key; the private one never belongs in its configuration.
    if (options.key_file.empty()) {
      error = std::string{"[auth] algorithm is "} + to_string(signing.algorithm)
              + ": pass the PEM private key with --key private.pem";
      return std::nullopt;
    }
    auto pem = read_file(options.key_file);
    if (!pem) {
      error = "cannot read " + options.key_file;
      return std::nullopt;
    }
    signing.key = std::move(*pem);
  }
  return signing;
}

std::string make_token(const token_options& options, const token_signing& signing, int64_t now) {
  token_claims claims;
  claims.sub = options.sub;
  claims.name = options.name;
  claims.iss = signing.issuer;
  if (!signing.audience.empty())
    claims.aud.push_back(signing.audience);
  claims.iat = now;
  claims.exp = now + options.ttl.count();
  claims.roles = options.roles;
  claims.rooms = options.rooms;
  return sign_token(claims, signing.algorithm, signing.key, signing.roles_claim,
                    signing.rooms_claim);
}

int run_token_command(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i)
    args.emplace_back(argv[i]);
  std::string error;
  auto options = parse_token_options(args, error);
  if (!options) {
    std::cerr << "parley token: " << error << '\n' << usage;
    return 2;
  }
  if (options->help) {
    std::cout << usage;
    return 0;
  }
  auto signing = load_token_signing(*options, error);
  if (!signing) {
    std::cerr << "parley token: " << error << '\n';
    return 2;
  }
  try {
    std::cout << make_token(*options, *signing, unix_now()) << '\n';
  } catch (const auth_config_error& err) {
    std::cerr << "parley token: " << err.what() << '\n';
    return 2;
  }
  return 0;
}

} // namespace parley::auth

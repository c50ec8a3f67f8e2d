#include "admin/admin_token.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>
#include <fstream>
#include <iterator>

namespace parley::admin {

namespace {

using digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

digest sha256(std::string_view text) {
  digest out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

} // namespace

std::string read_admin_token(const admin_settings& cfg) {
  if (!cfg.token.empty() && !cfg.token_file.empty())
    throw admin_config_error("[admin] set token or token_file, not both");
  std::string token = cfg.token;
  if (!cfg.token_file.empty()) {
    std::ifstream in{cfg.token_file, std::ios::binary};
    if (!in)
      throw admin_config_error("[admin] token_file: cannot read " + cfg.token_file);
    token.assign(std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{});
    // Files written with echo end in a newline that is no part of the token.
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r'))
      token.pop_back();
    if (token.empty())
      throw admin_config_error("[admin] token_file: " + cfg.token_file + " is empty");
  }
  if (!token.empty() && token.size() < min_token_bytes)
    throw admin_config_error("[admin] the token must be at least " + std::to_string(min_token_bytes)
                             + " bytes (e.g. openssl rand -hex 32)");
  return token;
}

token_check check_bearer(std::string_view authorization, const std::string& token) {
  // "Bearer" is case-insensitive (RFC 7235); one or more spaces separate it from the token.
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() || !equals_ignoring_case(authorization.substr(0, scheme.size()), scheme)
      || authorization[scheme.size()] != ' ')
    return token_check::missing;
  auto offered = authorization.substr(scheme.size());
  while (!offered.empty() && offered.front() == ' ')
    offered.remove_prefix(1);
  while (!offered.empty() && offered.back() == ' ')
    offered.remove_suffix(1);
  if (offered.empty())
    return token_check::missing;
  auto a = sha256(offered);
  auto b = sha256(token);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0 ? token_check::accepted : token_check::wrong;
}

} // namespace parley::admin

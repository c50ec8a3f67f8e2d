#pragma once

// JSON Web Tokens (RFC 7519, JWS compact form) with OpenSSL's EVP API. The algorithm is fixed by
// the configuration and never taken from a token: a token whose header names another algorithm
// ("none", or HS256 when the server expects RS256) is refused before any key is used.
// docs/auth.md says why we do this ourselves and what each refusal means.

#include "auth/claims.hpp"
#include "auth/identity.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace parley::auth {

enum class jwt_algorithm : uint8_t { hs256, rs256, es256, eddsa };

/// "HS256", "RS256", "ES256", "EdDSA": the names in a token's header and in config.ini.
const char* to_string(jwt_algorithm alg);
std::optional<jwt_algorithm> algorithm_from_string(std::string_view name);

/// A key or setting that cannot be used: the message says which and why (start-up refuses it).
class auth_config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// What the verifier checks a token against.
struct verifier_settings {
  jwt_algorithm algorithm = jwt_algorithm::hs256;
  std::string secret;           ///< HS256: the shared secret (at least 32 bytes)
  std::string public_key_pem;   ///< RS256 / ES256 / EdDSA: the public key, PEM text
  std::string issuer;           ///< non-empty: "iss" must equal it
  std::string audience;         ///< non-empty: "aud" must contain it
  std::chrono::seconds leeway{30};  ///< clock skew allowed on exp and nbf
  std::string roles_claim = "roles";
  std::string rooms_claim = "rooms";
};

/// Why a token was refused. Stable: tests and logs use them.
enum class token_problem : uint8_t {
  malformed,          ///< not three base64url parts, bad JSON, or a claim of the wrong type
  wrong_algorithm,    ///< the header's alg is not the configured one (includes "none")
  bad_signature,
  expired,            ///< exp (plus leeway) has passed
  missing_expiry,     ///< no exp claim: Parley accepts no token that never expires
  not_yet_valid,      ///< nbf (minus leeway) is in the future
  wrong_issuer,
  wrong_audience,
  bad_subject,        ///< sub missing or not a valid user name (1-32 of A-Z a-z 0-9 _ . -)
};

/// A short English reason, for error frames and logs ("token expired").
const char* to_string(token_problem problem);

/// The result of verifying one token: an identity, or why not.
struct verification {
  std::optional<identity> who;
  token_problem problem = token_problem::malformed;  ///< meaningful only without `who`

  explicit operator bool() const noexcept { return who.has_value(); }
};

/// Verifies tokens against one fixed algorithm and key. Immutable after construction, so one
/// instance is shared by every thread (the net layer at the handshake, sessions on refresh).
class jwt_verifier {
public:
  /// Loads the key. Throws auth_config_error for a missing or short secret, an unreadable PEM
  /// key, or a key of the wrong type for the algorithm (an RSA key for ES256, ...).
  explicit jwt_verifier(verifier_settings settings);
  ~jwt_verifier();

  jwt_verifier(const jwt_verifier&) = delete;
  jwt_verifier& operator=(const jwt_verifier&) = delete;

  /// Checks signature, algorithm and claims at `now` (seconds since the Unix epoch). On success
  /// the identity has sub, name, roles (member when the claim is absent or names no known role),
  /// rooms and exp.
  verification verify(std::string_view token, int64_t now) const;

  const verifier_settings& settings() const noexcept { return settings_; }

private:
  struct key;
  verifier_settings settings_;
  std::unique_ptr<key> key_;
};

/// Signs `claims` as a compact JWT. `key` is the HS256 secret, or a PEM private key for RS256,
/// ES256 and EdDSA. For `parley token` and the tests. Throws auth_config_error on a bad key.
std::string sign_token(const token_claims& claims, jwt_algorithm alg, std::string_view key,
                       const std::string& roles_claim = "roles",
                       const std::string& rooms_claim = "rooms");

/// The current time in seconds since the Unix epoch.
int64_t unix_now();

} // namespace parley::auth

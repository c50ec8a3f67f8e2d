#pragma once

// The parts of a JSON Web Token (RFC 7519) Parley reads, as plain values. The codec
// (protocol/codec.hpp) turns them into JSON and back; auth/jwt.hpp signs and verifies.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::auth {

/// A token's JOSE header.
struct token_header {
  std::string alg;  ///< as written in the token; compared with the configured algorithm, never trusted
  std::string typ;  ///< "JWT" or absent
};

/// A token's claims. Absent claims stay empty or nullopt; a claim of the wrong JSON type makes the
/// whole token malformed.
struct token_claims {
  std::string sub;                     ///< the user id
  std::string name;                    ///< display name
  std::string iss;
  std::vector<std::string> aud;        ///< "aud" may be a string or an array of strings
  std::optional<int64_t> exp;          ///< seconds since the Unix epoch
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
  std::vector<std::string> roles;      ///< the configured roles claim (a string or an array)
  std::vector<std::string> rooms;      ///< the configured rooms claim (an array of room names)
};

} // namespace parley::auth

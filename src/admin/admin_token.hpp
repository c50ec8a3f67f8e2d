#pragma once

// The admin API's bearer token: read from [admin] token or token_file once at start, and checked
// on every /admin request in constant time. The token is never logged.

#include "config/settings.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace parley::admin {

/// Tokens shorter than this are refused at start: the API can kick, ban and drain.
inline constexpr std::size_t min_token_bytes = 16;

/// A setting that makes the admin listener unusable; the message names the setting.
class admin_config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The token from [admin] token or token_file (a trailing line end in the file is no part of it);
/// empty when neither is set (the API is then disabled). Throws admin_config_error when both are
/// set, the file cannot be read, or the token is shorter than min_token_bytes.
std::string read_admin_token(const admin_settings& cfg);

/// What an Authorization header says about the caller.
enum class token_check {
  accepted,  ///< "Bearer <the token>"
  missing,   ///< no header, or not a Bearer credential
  wrong,     ///< a Bearer credential with another token
};

/// Checks an Authorization header against `token` (which must not be empty). The comparison takes
/// the same time wherever the tokens differ, and whatever their lengths: both are hashed first.
token_check check_bearer(std::string_view authorization, const std::string& token);

} // namespace parley::admin

#pragma once

// From [auth] settings to what the verifier and the permission checks need: reads the secret and
// key files and names the algorithm, so that a bad setting stops start-up with a clear message.

#include "auth/jwt.hpp"
#include "auth/permissions.hpp"
#include "config/settings.hpp"

namespace parley::auth {

/// The verifier's settings for [auth]: reads secret_file or public_key. Throws auth_config_error
/// naming the setting that cannot be used.
verifier_settings make_verifier_settings(const auth_settings& cfg);

/// The HS256 secret of [auth] (secret, or the contents of secret_file without a trailing newline).
/// Throws auth_config_error when neither is set or the file cannot be read.
std::string read_secret(const auth_settings& cfg);

} // namespace parley::auth

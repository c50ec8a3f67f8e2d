#pragma once

// Everything the server checks before it serves that needs no side effect: the values
// (value_problems), the [auth] rules and keys, the trusted proxies, the listen address and the TLS
// files. Start-up and `parley check-config` run this one function, so they cannot disagree.
// (The database is opened at start-up only: opening it creates it.)

#include "auth/jwt.hpp"
#include "auth/permissions.hpp"
#include "config/settings.hpp"

#include <memory>
#include <string>
#include <vector>

namespace parley {

/// What start-up keeps of a check: the loaded room rules and token verifier, and the problems.
struct startup_check {
  std::vector<std::string> problems;  ///< one line each, naming the setting; empty: usable
  std::shared_ptr<const auth::room_permissions> permissions;
  std::shared_ptr<const auth::jwt_verifier> verifier;  ///< jwt mode only; null in open mode

  bool ok() const noexcept { return problems.empty(); }
};

/// Checks `values` as start-up does, collecting every problem rather than stopping at the first.
/// Reads the key and certificate files; writes nothing. Never throws.
startup_check check_startup(const settings& values);

} // namespace parley

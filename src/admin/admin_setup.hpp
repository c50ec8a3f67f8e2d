#pragma once

// Builds the admin listener from the settings: the actor backend, the API and the listener. The
// net layer's side comes in as server_hooks, which main.cpp wires to net::server.

#include "admin/admin_server.hpp"
#include "config/settings.hpp"

#include <caf/fwd.hpp>

#include <memory>
#include <string>

namespace parley::admin {

/// An admin listener for `cfg` (not started). `token` is read_admin_token's result.
std::unique_ptr<admin_server> make_admin_server(const settings& cfg, std::string token,
                                                caf::actor_system& sys, server_hooks hooks,
                                                std::chrono::milliseconds default_drain_period);

} // namespace parley::admin

#pragma once

// Who may open /ws and under which name: the Origin check (Beast does none) and the ?name= query
// parameter. Pure functions over header and target values.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley::net {

/// Decides whether a WebSocket upgrade may proceed. Requests without Origin (non-browser clients)
/// always pass. Otherwise, with a configured `allowed` list, the Origin must be one of its
/// entries; with an empty list, its host:port must equal the Host header (same-origin pages).
bool origin_allowed(std::optional<std::string_view> origin, std::string_view host,
                    const std::vector<std::string>& allowed);

/// The value of the first `key=value` query parameter of a request target, if present (an empty
/// value counts as present). Values are returned as they are, without percent-decoding.
std::optional<std::string> query_param(std::string_view target, std::string_view key);

} // namespace parley::net

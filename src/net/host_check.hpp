#pragma once

// The Host check against DNS rebinding: a page on evil.example whose name is made to resolve to
// this server sends "Host: evil.example", which no allow-list of our own names contains.

#include <string>
#include <string_view>
#include <vector>

namespace parley::net {

/// True if the Host header names one of `allowed` ([server] allowed_hosts). Entries are host
/// names or addresses ("localhost", "127.0.0.1", "[::1]"), matched case-insensitively on any port,
/// or "name:port" to allow only that port. An empty list allows every host.
bool host_allowed(std::string_view host_header, const std::vector<std::string>& allowed);

} // namespace parley::net

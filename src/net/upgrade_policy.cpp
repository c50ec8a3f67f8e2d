#include "net/upgrade_policy.hpp"

#include <algorithm>
#include <cctype>

namespace parley::net {

namespace {

std::string lower(std::string_view s) {
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '/'))
    s.remove_suffix(1);
  return s;
}

// "host:port" with the scheme's default port made explicit, so that "http://a" and Host "a:80"
// compare equal. IPv6 literals keep their brackets.
std::string with_port(std::string authority, std::string_view scheme) {
  auto bracket = authority.rfind(']');
  auto colon = authority.rfind(':');
  bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) {
    if (scheme == "https" || scheme == "wss")
      authority += ":443";
    else
      authority += ":80";
  }
  return authority;
}

} // namespace

bool origin_allowed(std::optional<std::string_view> origin, std::string_view host,
                    const std::vector<std::string>& allowed) {
  // Only browsers send Origin, and the check protects only browsers: any other client can send
  // whatever Origin it likes. A request without one is therefore not a browser's and passes.
  if (!origin)
    return true;
  if (!allowed.empty()) {
    auto want = lower(trim(*origin));
    return std::any_of(allowed.begin(), allowed.end(),
                       [&](const std::string& a) { return lower(trim(a)) == want; });
  }
  auto o = lower(trim(*origin));
  auto sep = o.find("://");
  if (sep == std::string::npos || sep == 0)
    return false; // "null" and other opaque origins never match a host
  auto scheme = o.substr(0, sep);
  auto authority = o.substr(sep + 3);
  if (authority.empty() || authority.find_first_of("/?#@") != std::string::npos)
    return false;
  auto h = lower(trim(host));
  if (h.empty())
    return false;
  return with_port(authority, scheme) == with_port(h, scheme);
}

std::optional<std::string> query_param(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  if (auto hash = query.find('#'); hash != std::string_view::npos)
    query = query.substr(0, hash);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    auto eq = part.find('=');
    auto name = part.substr(0, eq);
    if (name == key)
      return std::string{eq == std::string_view::npos ? std::string_view{} : part.substr(eq + 1)};
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

} // namespace parley::net

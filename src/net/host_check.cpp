#include "net/host_check.hpp"

#include <algorithm>
#include <cctype>

namespace parley::net {

namespace {

struct host_port {
  std::string host;  ///< lower case, IPv6 literals in brackets, no trailing dot
  std::string port;  ///< empty when none was given
};

host_port split(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  host_port out;
  auto bracket = text.rfind(']');
  auto colon = text.rfind(':');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    out.port = std::string{text.substr(colon + 1)};
    text = text.substr(0, colon);
  }
  if (!text.empty() && text.back() == '.')
    text.remove_suffix(1);  // "localhost." is "localhost"
  out.host.resize(text.size());
  std::transform(text.begin(), text.end(), out.host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

} // namespace

bool host_allowed(std::string_view host_header, const std::vector<std::string>& allowed) {
  if (allowed.empty())
    return true;
  auto requested = split(host_header);
  if (requested.host.empty())
    return false;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& entry) {
    auto want = split(entry);
    return want.host == requested.host && (want.port.empty() || want.port == requested.port);
  });
}

} // namespace parley::net

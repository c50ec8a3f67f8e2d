#include "cluster/redis_address.hpp"

#include <charconv>

namespace parley::cluster {

std::optional<redis_address> parse_redis_address(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return std::nullopt;
  unsigned port = 0;
  auto [end, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
  if (ec != std::errc{} || end != text.data() + text.size() || port == 0 || port > 65535)
    return std::nullopt;
  return redis_address{text.substr(0, colon), static_cast<uint16_t>(port)};
}

} // namespace parley::cluster

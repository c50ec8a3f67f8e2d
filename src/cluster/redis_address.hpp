#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace parley::cluster {

/// Where Redis listens: [cluster] redis, "host:port".
struct redis_address {
  std::string host;
  uint16_t port = 0;
};

/// host:port split at the last colon; nullopt unless both parts are there and the port is 1-65535.
std::optional<redis_address> parse_redis_address(const std::string& text);

} // namespace parley::cluster

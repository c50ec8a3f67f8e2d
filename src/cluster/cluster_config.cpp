#include "cluster/cluster_config.hpp"

#include <chrono>
#include <cstdio>
#include <random>
#include <unistd.h>

namespace parley::cluster {

cluster_config make_cluster_config(const cluster_settings& s, std::size_t max_rooms) {
  cluster_config cfg;
  cfg.settings = s;
  cfg.address = parse_redis_address(s.redis).value_or(redis_address{"127.0.0.1", 6379});
  std::string id = s.node_id;
  if (id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    id = std::string{host} + "-" + std::to_string(getpid());
  }
  char incarnation[9];
  std::snprintf(incarnation, sizeof(incarnation), "%08x",
                static_cast<unsigned>(std::random_device{}()));
  cfg.node = id + "#" + incarnation;
  cfg.max_rooms = max_rooms;
  cfg.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.timeout);
  return cfg;
}

} // namespace parley::cluster

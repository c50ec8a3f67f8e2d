#pragma once

// Two Parley nodes in cluster mode sharing one redis-server, for the cluster end-to-end tests.
// Everything runs on loopback ports and stops when the fixture goes.

#include "harness.hpp"
#include "redis_process.hpp"

#include <memory>
#include <string>

namespace parley::e2e {

/// The nodes' presence TTL in the tests: short, so that a dead node's users go offline quickly.
inline constexpr millis cluster_presence_ttl = 3s;

/// The admin token both nodes accept.
inline const std::string cluster_admin_token = "e2e-cluster-admin-token-0123456789";

/// The options of one cluster node with id `node` using the Redis at `redis_address`.
server_options cluster_node_options(const std::string& redis_address, const std::string& node);

/// The value of one series on a node's /metrics, e.g. `parley_cluster_events_total{kind="presence"}`;
/// fails the test when the series is missing.
double metric_value(const server_process& node, const std::string& series);

class cluster_fixture {
public:
  explicit cluster_fixture(redis_options redis_opts = {});

  redis_process& redis() { return redis_; }
  server_process& a() { return *a_; }
  server_process& b() { return *b_; }

  /// POST to a node's admin API with the token.
  http_reply admin_post(const server_process& node, const std::string& target, const std::string& body);

private:
  redis_process redis_;
  std::unique_ptr<server_process> a_;
  std::unique_ptr<server_process> b_;
};

} // namespace parley::e2e

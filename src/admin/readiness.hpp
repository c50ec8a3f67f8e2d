#pragma once

// /readyz: whether this node should get new clients, and if not, why. Pure: the inputs are read
// by the caller (the net layer's through callbacks main.cpp wires, the actors' through the
// backend), so the rule is tested without a server.

#include <cstddef>
#include <string>
#include <vector>

namespace parley::admin {

/// What readiness depends on.
struct readiness_inputs {
  bool draining = false;
  std::size_t connections = 0;      ///< WebSocket connections open on the public listener
  std::size_t max_connections = 0;  ///< 0: no limit
  bool directory_running = false;
  bool store_open = false;
};

/// Why the node is not ready, in a fixed order; empty: ready.
std::vector<std::string> not_ready_reasons(const readiness_inputs& in);

/// The /readyz body: "ready\n", or one reason per line.
std::string readiness_text(const std::vector<std::string>& reasons);

/// The gauges parley_draining and parley_ready, registered once per process in the process
/// registry (the first call registers them).
void set_readiness_gauges(bool draining, bool ready);

} // namespace parley::admin

#include "cluster_fixture.hpp"

#include <doctest/doctest.h>

#include <string>

namespace parley::e2e {

server_options cluster_node_options(const std::string& redis_address, const std::string& node) {
  server_options opts;
  opts.ini["cluster.mode"] = "\"redis\"";
  opts.ini["cluster.redis"] = "\"" + redis_address + "\"";
  opts.ini["cluster.node_id"] = "\"" + node + "\"";
  opts.ini["cluster.presence_ttl"] = std::to_string(cluster_presence_ttl.count()) + "ms";
  opts.ini["cluster.timeout"] = "500ms";
  opts.ini["admin.token"] = "\"" + cluster_admin_token + "\"";
  return opts;
}

double metric_value(const server_process& node, const std::string& series) {
  auto text = http_get(node.admin_port(), "/metrics").body;
  auto at = text.find("\n" + series + " ");
  REQUIRE_MESSAGE(at != std::string::npos, "no " << series << " in /metrics");
  auto value_at = at + 1 + series.size() + 1;
  return std::stod(text.substr(value_at, text.find('\n', value_at) - value_at));
}

cluster_fixture::cluster_fixture(redis_options redis_opts)
  : redis_(std::move(redis_opts)),
    a_(std::make_unique<server_process>(cluster_node_options(redis_.address(), "a"))),
    b_(std::make_unique<server_process>(cluster_node_options(redis_.address(), "b"))) {
  // nop
}

http_reply cluster_fixture::admin_post(const server_process& node, const std::string& target,
                                       const std::string& body) {
  return http_request(node.admin_port(), "POST", target, body,
                      {{"Authorization", "Bearer " + cluster_admin_token}});
}

} // namespace parley::e2e

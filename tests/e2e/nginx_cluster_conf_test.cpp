// End-to-end: the shipped deploy/nginx/cluster.conf, run by Debian's nginx in front of two real
// Parley nodes (single mode here: what is checked is nginx's part — spreading WebSocket clients
// over the nodes and sending new ones past a dead node). The nodes' connection counts come from
// their admin /metrics (parley_connections_open).

#include "harness.hpp"
#include "nginx_cluster.hpp"
#include "wss_client.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace parley::e2e;

namespace {

/// parley_connections_open on this node's admin listener.
double connections_open(const server_process& node) {
  auto reply = http_get(node.admin_port(), "/metrics");
  REQUIRE(reply.status == 200);
  std::istringstream in{reply.body};
  std::string line;
  const std::string series = "parley_connections_open ";
  while (std::getline(in, line))
    if (line.compare(0, series.size(), series) == 0)
      return std::stod(line.substr(series.size()));
  FAIL("no parley_connections_open in /metrics:\n" << reply.body);
  return -1;
}

/// Waits until the node counts `want` open connections (the count lands a moment after the
/// welcome); returns the last count seen.
double wait_for_connections(const server_process& node, double want) {
  double last = -1;
  for (int i = 0; i < 100; ++i) {
    last = connections_open(node);
    if (last == want)
      break;
    std::this_thread::sleep_for(20ms);
  }
  return last;
}

/// Connects `count` more browsers through nginx; every one must get its welcome.
void connect_clients(std::vector<std::unique_ptr<wss_client>>& clients, const nginx_cluster& front,
                     int count, const std::string& prefix) {
  for (int i = 0; i < count; ++i) {
    auto name = prefix + std::to_string(i);
    CAPTURE(name);
    auto client = std::make_unique<wss_client>();
    auto welcome = client->connect(front.https_port(), name, front.browser());
    CHECK(welcome["type"] == "welcome");
    clients.push_back(std::move(client));
  }
}

/// How many lines of `text` contain `needle`.
std::size_t lines_with(const std::string& text, const std::string& needle) {
  std::istringstream in{text};
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line))
    n += line.find(needle) != std::string::npos;
  return n;
}

} // namespace

TEST_SUITE("cluster") {

TEST_CASE("the shipped cluster.conf renders with one upstream line per node, and nginx -t accepts it") {
  nginx_cluster front;
  std::ifstream in(shipped_cluster_conf_path());
  std::stringstream shipped;
  shipped << in.rdbuf();
  auto site = render_cluster_conf(shipped.str(), 4431, 8001, {9001, 9002, 9003}, "/tmp/c.pem", "/tmp/k.pem");
  CHECK(lines_with(site, "server 127.0.0.1:900") == 3);
  CHECK(lines_with(site, "max_fails=1 fail_timeout=2s;") == 3);
  CHECK(lines_with(site, "server 127.0.0.1:9002 max_fails=1 fail_timeout=2s;") == 1);
  CHECK(site.find("127.0.0.1:8081") == std::string::npos);
  CHECK(site.find("127.0.0.1:8082") == std::string::npos);
  CHECK(site.find("listen 127.0.0.1:4431 ssl;") != std::string::npos);
  CHECK(site.find("listen 127.0.0.1:8001;") != std::string::npos);
  CHECK(site.find("proxy_next_upstream error timeout;") != std::string::npos);

  // Three nodes that do not run yet: nginx checks and starts all the same.
  front.start({free_loopback_port(), free_loopback_port(), free_loopback_port()});
  raw_connection plain{front.http_port()};
  plain.send(raw_get(front.http_port(), "/?room=general"));
  auto redirect = plain.read_head();
  CHECK(redirect.status == 301);
  CHECK(redirect.header("Location") == "https://127.0.0.1/?room=general");
}

TEST_CASE("nginx with the shipped cluster.conf spreads WebSocket clients over both nodes") {
  nginx_cluster front;
  server_process a{front.node_options()};
  server_process b{front.node_options()};
  front.start({a.port(), b.port()});

  std::vector<std::unique_ptr<wss_client>> clients;
  connect_clients(clients, front, 10, "user");
  // least_conn: clients that stay connected alternate between the nodes.
  auto on_a = wait_for_connections(a, 5);
  auto on_b = wait_for_connections(b, 5);
  CHECK(on_a >= 1);
  CHECK(on_b >= 1);
  CHECK(on_a + on_b == 10);
  CHECK(on_a == 5);
  CHECK(on_b == 5);

  // A chat through nginx works on whichever node a client reached.
  clients[0]->send({{"type", "join"}, {"room", "spread"}});
  clients[0]->next_of_type("joined");
}

TEST_CASE("after SIGKILL of one node, new WebSocket clients still connect through nginx to the other") {
  nginx_cluster front;
  server_process a{front.node_options()};
  server_process b{front.node_options()};
  front.start({a.port(), b.port()});

  std::vector<std::unique_ptr<wss_client>> before;
  connect_clients(before, front, 4, "before");
  CHECK(wait_for_connections(a, 2) == 2);
  CHECK(wait_for_connections(b, 2) == 2);

  auto dead_port = b.port();
  b.kill();
  std::vector<std::unique_ptr<wss_client>> after;
  connect_clients(after, front, 6, "after");
  CHECK(wait_for_connections(a, 8) == 8);  // the two from before and the six new ones

  // Once fail_timeout (2 s) has passed nginx tries the dead node again (it has the fewest
  // connections), is refused, and passes the same upgrade on to the live node.
  std::this_thread::sleep_for(2500ms);
  connect_clients(after, front, 2, "later");
  CHECK(wait_for_connections(a, 10) == 10);
  auto log = front.log();
  CAPTURE(log);
  CHECK(lines_with(log, "connect() failed (111: Connection refused) while connecting to upstream") >= 1);
  CHECK(lines_with(log, "127.0.0.1:" + std::to_string(dead_port)) >= 1);
}

} // TEST_SUITE("cluster")

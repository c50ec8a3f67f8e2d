#pragma once

// The shipped deploy/nginx/cluster.conf run by Debian's nginx in front of Parley nodes a test
// starts: the test changes only what an operator changes (listen ports, one upstream line per
// node, the certificate paths). TLS on the https port with a self-signed certificate for
// "localhost"; the public name is "localhost", the page's origin https://localhost:<https_port>.
//
//   nginx_cluster front;                                  // picks its ports, makes a certificate
//   server_process a{front.node_options(cluster_opts_a)}; // [server] settings for behind nginx
//   server_process b{front.node_options(cluster_opts_b)};
//   front.start({a.port(), b.port()});                    // renders, `nginx -t`, runs nginx
//   wss_client alice;
//   alice.connect(front.https_port(), "alice", front.browser());

#include "harness.hpp"
#include "nginx_process.hpp"
#include "wss_client.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::e2e {

/// deploy/nginx/cluster.conf in the source tree.
std::string shipped_cluster_conf_path();

/// `shipped` (the text of deploy/nginx/cluster.conf) with nginx listening on 127.0.0.1 at these
/// ports, the upstream's server lines replaced by one per node port (each keeping the shipped
/// parameters, e.g. max_fails) and these certificate paths. Fails the test when the shipped file
/// no longer has exactly one of each line it replaces.
std::string render_cluster_conf(const std::string& shipped, uint16_t https_port, uint16_t http_port,
                                const std::vector<uint16_t>& node_ports,
                                const std::string& certificate, const std::string& key);

/// nginx with the shipped cluster.conf in front of the nodes given to start(); stopped by the
/// destructor (or stop()).
class nginx_cluster {
public:
  nginx_cluster();

  uint16_t https_port() const { return https_port_; }
  uint16_t http_port() const { return http_port_; }
  /// "localhost:<https_port>": the Host header browsers send.
  std::string host() const;
  /// "https://localhost:<https_port>": the chat page's origin.
  std::string origin() const;

  /// `opts` plus the [server] settings docs/operations.md ("Behind nginx") gives a node behind
  /// this nginx: allowed_hosts, trusted_proxies, allowed_origins (entries already in opts win).
  server_options node_options(server_options opts = {}) const;

  /// Renders cluster.conf for these node ports, checks it with `nginx -t` and runs nginx; returns
  /// once nginx listens. Fails the test when nginx is already running.
  void start(const std::vector<uint16_t>& node_ports);
  /// Stops nginx (nothing when it is not running).
  void stop();

  /// What a browser on the page sends, connecting from `source_address` (any of 127.0.0.0/8).
  wss_options browser(const std::string& source_address = {}) const;

  /// The directory nginx runs in (nginx.conf, cluster.conf, logs).
  std::string prefix() const;
  /// nginx's error log and stderr so far.
  std::string log() const;

private:
  scratch_dir dir_;
  uint16_t https_port_;
  uint16_t http_port_;
  std::string certificate_;
  std::string key_;
  std::optional<nginx_process> nginx_;
};

} // namespace parley::e2e

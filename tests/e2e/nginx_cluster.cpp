#include "nginx_cluster.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace parley::e2e {

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE_MESSAGE(out.good(), "could not write " << path);
}

/// Where `needle` is in `text`; fails the test unless it occurs exactly once, so that a change to
/// the shipped file cannot silently leave the tests running something else.
std::size_t find_once(const std::string& text, const std::string& needle) {
  auto at = text.find(needle);
  REQUIRE_MESSAGE(at != std::string::npos,
                  "deploy/nginx/cluster.conf no longer contains '" << needle
                      << "': update tests/e2e/nginx_cluster.cpp");
  REQUIRE_MESSAGE(text.find(needle, at + 1) == std::string::npos,
                  "deploy/nginx/cluster.conf contains '" << needle << "' more than once");
  return at;
}

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  text.replace(find_once(text, from), from.size(), to);
}

/// The whole line (with its newline) that holds `needle`: [begin, end) in `text`.
std::pair<std::size_t, std::size_t> line_of(const std::string& text, const std::string& needle) {
  auto at = find_once(text, needle);
  auto begin = text.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  auto end = text.find('\n', at);
  end = end == std::string::npos ? text.size() : end + 1;
  return {begin, end};
}

// The two upstream servers as shipped.
const std::string first_node = "127.0.0.1:8081";
const std::string second_node = "127.0.0.1:8082";

} // namespace

std::string shipped_cluster_conf_path() {
  return std::string(PARLEY_SOURCE_DIR) + "/deploy/nginx/cluster.conf";
}

std::string render_cluster_conf(const std::string& shipped, uint16_t https_port, uint16_t http_port,
                                const std::vector<uint16_t>& node_ports,
                                const std::string& certificate, const std::string& key) {
  REQUIRE_MESSAGE(!node_ports.empty(), "render_cluster_conf needs at least one node port");
  auto site = shipped;
  replace_once(site, "listen 443 ssl;", "listen 127.0.0.1:" + std::to_string(https_port) + " ssl;");
  replace_once(site, "listen 80;", "listen 127.0.0.1:" + std::to_string(http_port) + ";");
  replace_once(site, "/etc/ssl/parley/fullchain.pem", certificate);
  replace_once(site, "/etc/ssl/parley/privkey.pem", key);

  // The second shipped server line goes; the first becomes one line per node, parameters kept.
  auto [second_begin, second_end] = line_of(site, second_node);
  site.erase(second_begin, second_end - second_begin);
  auto [first_begin, first_end] = line_of(site, first_node);
  auto pattern = site.substr(first_begin, first_end - first_begin);
  auto address_at = pattern.find(first_node);
  std::string servers;
  for (auto port : node_ports) {
    auto line = pattern;
    line.replace(address_at, first_node.size(), "127.0.0.1:" + std::to_string(port));
    servers += line;
  }
  site.replace(first_begin, first_end - first_begin, servers);
  return site;
}

nginx_cluster::nginx_cluster()
  : https_port_(free_loopback_port()), http_port_(free_loopback_port()),
    certificate_(dir_.file("fullchain.pem")), key_(dir_.file("privkey.pem")) {
  REQUIRE(::mkdir(prefix().c_str(), 0700) == 0);
  make_localhost_certificate(certificate_, key_);
}

std::string nginx_cluster::host() const {
  return "localhost:" + std::to_string(https_port_);
}

std::string nginx_cluster::origin() const {
  return "https://" + host();
}

server_options nginx_cluster::node_options(server_options opts) const {
  opts.ini.emplace("server.allowed_hosts", "[\"localhost\"]");
  opts.ini.emplace("server.trusted_proxies", "[\"127.0.0.1\"]");
  opts.ini.emplace("server.allowed_origins", "[\"" + origin() + "\"]");
  return opts;
}

void nginx_cluster::start(const std::vector<uint16_t>& node_ports) {
  REQUIRE_MESSAGE(!nginx_, "nginx_cluster::start: nginx is already running");
  auto site = render_cluster_conf(read_text(shipped_cluster_conf_path()), https_port_, http_port_,
                                  node_ports, certificate_, key_);
  write_text(prefix() + "/cluster.conf", site);
  write_text(prefix() + "/nginx.conf", nginx_main_config(prefix(), prefix() + "/cluster.conf"));
  auto check = check_nginx_config(prefix());
  REQUIRE_MESSAGE(check.ok, "nginx -t rejects the rendered deploy/nginx/cluster.conf:\n" << check.output);
  nginx_.emplace(prefix(), https_port_);
}

void nginx_cluster::stop() {
  nginx_.reset();
}

wss_options nginx_cluster::browser(const std::string& source_address) const {
  wss_options opts;
  opts.source_address = source_address;
  opts.host = host();
  opts.origin = origin();
  return opts;
}

std::string nginx_cluster::prefix() const {
  return dir_.file("nginx");
}

std::string nginx_cluster::log() const {
  return nginx_ ? nginx_->log() : read_text(prefix() + "/error.log");
}

} // namespace parley::e2e

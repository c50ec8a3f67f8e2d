// End-to-end: the shipped deploy/nginx/parley.conf, run by Debian's nginx in front of a real
// Parley. The test changes only what an operator changes too (listen ports, the upstream port,
// the certificate paths), and sets Parley's [server] options exactly as docs/operations.md
// ("Behind nginx") says. Clients connect to nginx from their own loopback addresses (127.0.0.3,
// 127.0.0.4), so Parley can tell them apart only through nginx's X-Forwarded-For.

#include "harness.hpp"
#include "nginx_process.hpp"
#include "wss_client.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace parley::e2e;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

const std::string shipped_config = std::string(PARLEY_SOURCE_DIR) + "/deploy/nginx/parley.conf";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in, "cannot read " << path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Replaces the one occurrence of `from`; fails the test if it is not there exactly once, so that
/// a change to the shipped file cannot silently leave the test running something else.
void replace_once(std::string& text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos,
                  "deploy/nginx/parley.conf no longer contains '" << from << "': update nginx_test.cpp");
  REQUIRE_MESSAGE(text.find(from, at + 1) == std::string::npos,
                  "deploy/nginx/parley.conf contains '" << from << "' more than once");
  text.replace(at, from.size(), to);
}

/// How Parley is configured behind the proxy in one test.
struct parley_setup {
  /// [server] trusted_proxies=["127.0.0.1"] as the docs say; false leaves it [] (the default).
  bool trust_proxy = true;
  /// [server] allowed_origins=["https://localhost:<port>"]; false leaves it [] (same origin only).
  bool list_origin = true;
  /// [limits] max_connections_per_address.
  unsigned max_connections_per_address = 64;
};

/// A Parley on a loopback port and nginx running the shipped config in front of it, with TLS on
/// the proxy's https port and the HTTP-to-HTTPS redirect on its http port. The public name is
/// "localhost", the page's origin https://localhost:<https_port>.
class parley_behind_nginx {
public:
  explicit parley_behind_nginx(const parley_setup& setup = {})
    : https_port_(free_loopback_port()), http_port_(free_loopback_port()),
      parley_(parley_options(setup)) {
    auto prefix = dir_.file("nginx");
    REQUIRE(::mkdir(prefix.c_str(), 0700) == 0);
    auto cert = dir_.file("fullchain.pem");
    auto key = dir_.file("privkey.pem");
    make_localhost_certificate(cert, key);

    auto site = read_text(shipped_config);
    replace_once(site, "listen 443 ssl;", "listen 127.0.0.1:" + std::to_string(https_port_) + " ssl;");
    replace_once(site, "listen 80;", "listen 127.0.0.1:" + std::to_string(http_port_) + ";");
    replace_once(site, "server 127.0.0.1:8080;", "server 127.0.0.1:" + std::to_string(parley_.port()) + ";");
    replace_once(site, "/etc/ssl/parley/fullchain.pem", cert);
    replace_once(site, "/etc/ssl/parley/privkey.pem", key);
    write(prefix + "/parley.conf", site);
    write(prefix + "/nginx.conf", nginx_main_config(prefix, prefix + "/parley.conf"));

    auto check = check_nginx_config(prefix);
    REQUIRE_MESSAGE(check.ok, "nginx -t rejects the rendered deploy/nginx/parley.conf:\n" << check.output);
    nginx_.emplace(prefix, https_port_);
  }

  uint16_t https_port() const { return https_port_; }
  uint16_t http_port() const { return http_port_; }
  std::string host() const { return "localhost:" + std::to_string(https_port_); }
  std::string origin() const { return "https://" + host(); }
  server_process& parley() { return parley_; }
  std::string nginx_log() const { return nginx_->log(); }

  /// What a browser on the page sends, from this client address.
  wss_options browser(const std::string& source_address) const {
    wss_options opts;
    opts.source_address = source_address;
    opts.host = host();
    opts.origin = origin();
    return opts;
  }

private:
  server_options parley_options(const parley_setup& setup) const {
    server_options opts;
    opts.ini["server.allowed_hosts"] = "[\"localhost\"]";
    opts.ini["server.trusted_proxies"] = setup.trust_proxy ? "[\"127.0.0.1\"]" : "[]";
    opts.ini["server.allowed_origins"] = setup.list_origin ? "[\"" + origin() + "\"]" : "[]";
    opts.ini["limits.max_connections_per_address"] = std::to_string(setup.max_connections_per_address);
    return opts;
  }

  static void write(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    REQUIRE_MESSAGE(out.good(), "could not write " << path);
  }

  scratch_dir dir_;
  uint16_t https_port_;
  uint16_t http_port_;
  server_process parley_;
  std::optional<nginx_process> nginx_;
};

struct https_reply {
  unsigned status = 0;
  std::string location;
  std::string body;
};

/// One GET through nginx's TLS port with this Host header.
https_reply https_get(uint16_t port, const std::string& host, const std::string& target) {
  asio::io_context ioc;
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  ctx.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream{ioc, ctx};
  beast::get_lowest_layer(stream).expires_after(default_wait);
  beast::get_lowest_layer(stream).connect(
    asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
  stream.handshake(asio::ssl::stream_base::client);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return {res.result_int(), std::string{res[http::field::location]}, res.body()};
}

} // namespace

TEST_CASE("two clients chat over wss through nginx running the shipped config") {
  parley_behind_nginx site;
  wss_client alice;
  auto welcome = alice.connect(site.https_port(), "alice", site.browser("127.0.0.3"));
  CHECK(welcome["type"] == "welcome");
  CHECK(alice.peer_common_name() == "localhost");  // TLS ended at nginx, with nginx's certificate
  wss_client bob;
  bob.connect(site.https_port(), "bob", site.browser("127.0.0.4"));
  alice.send({{"type", "join"}, {"room", "proxied"}});
  alice.next_of_type("joined");
  bob.send({{"type", "join"}, {"room", "proxied"}});
  bob.next_of_type("joined");

  alice.send({{"type", "send"}, {"room", "proxied"}, {"text", "through nginx"}, {"cid", "a1"}});
  auto to_bob = bob.next_of_type("message", "through nginx");
  CHECK(to_bob["from"] == "alice");
  bob.send({{"type", "send"}, {"room", "proxied"}, {"text", "and back"}, {"cid", "b1"}});
  auto to_alice = alice.next_of_type("message", "and back");
  CHECK(to_alice["from"] == "bob");
}

TEST_CASE("through nginx the chat page and /healthz are served, and plain http redirects to https") {
  parley_behind_nginx site;
  auto health = https_get(site.https_port(), site.host(), "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok");
  auto page = https_get(site.https_port(), site.host(), "/");
  CHECK(page.status == 200);
  CHECK(page.body.find("<html") != std::string::npos);

  raw_connection plain{site.http_port()};
  plain.send(raw_get(site.http_port(), "/?room=general"));
  auto redirect = plain.read_head();
  CHECK(redirect.status == 301);
  CHECK(redirect.header("Location") == "https://127.0.0.1/?room=general");
}

TEST_CASE("behind nginx Parley limits the real client address, and a forged X-Forwarded-For does not help") {
  parley_setup setup;
  setup.max_connections_per_address = 1;
  parley_behind_nginx site{setup};

  wss_client first;
  first.connect(site.https_port(), "first", site.browser("127.0.0.3"));
  // Another address is another client, though both reach Parley from nginx's 127.0.0.1.
  wss_client neighbour;
  CHECK(neighbour.upgrade(site.https_port(), "neighbour", site.browser("127.0.0.4")) == 101);

  wss_client second;
  CHECK(second.upgrade(site.https_port(), "second", site.browser("127.0.0.3")) == 429);

  // nginx appends the address it saw to the client's header; Parley believes only that entry.
  for (std::string forged : {"127.0.0.9", "127.0.0.9, 127.0.0.1", "10.1.2.3"}) {
    CAPTURE(forged);
    auto opts = site.browser("127.0.0.3");
    opts.forwarded_for = forged;
    wss_client sneaky;
    CHECK(sneaky.upgrade(site.https_port(), "sneaky", opts) == 429);
  }
}

TEST_CASE("without trusted_proxies every client behind nginx counts as nginx's own address") {
  // The counter-check of the test above: the setting is what makes Parley see the clients.
  parley_setup setup;
  setup.trust_proxy = false;
  setup.max_connections_per_address = 1;
  parley_behind_nginx site{setup};

  wss_client first;
  first.connect(site.https_port(), "first", site.browser("127.0.0.3"));
  wss_client other;
  CHECK(other.upgrade(site.https_port(), "other", site.browser("127.0.0.4")) == 429);
}

TEST_CASE("through nginx the page's own origin is accepted and a foreign one gets 403") {
  for (bool list_origin : {true, false}) {
    CAPTURE(list_origin);  // allowed_origins=["https://localhost:<port>"], or [] (same origin)
    parley_setup setup;
    setup.list_origin = list_origin;
    parley_behind_nginx site{setup};

    wss_client own;
    CHECK(own.upgrade(site.https_port(), "own", site.browser("127.0.0.3")) == 101);

    std::vector<std::string> foreign_origins = {"https://evil.example", "null"};
    if (list_origin)  // the list pins the scheme; the same-origin rule compares host and port only
      foreign_origins.push_back("http://" + site.host());
    for (const auto& foreign : foreign_origins) {
      CAPTURE(foreign);
      auto opts = site.browser("127.0.0.4");
      opts.origin = foreign;
      wss_client stranger;
      CHECK(stranger.upgrade(site.https_port(), "stranger", opts) == 403);
    }

    // A name Parley does not serve is refused even though nginx answered it (DNS rebinding).
    auto opts = site.browser("127.0.0.5");
    opts.host = "evil.example:" + std::to_string(site.https_port());
    opts.origin = "https://" + opts.host;
    wss_client rebound;
    CHECK(rebound.upgrade(site.https_port(), "rebound", opts) == 421);
  }
}

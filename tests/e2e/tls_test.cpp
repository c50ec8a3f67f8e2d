// End-to-end: HTTPS and WSS on the server's port ([tls]). Certificates are made at test time with
// the openssl command line, into a scratch directory; nothing secret is checked in.

#include "harness.hpp"
#include "wss_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

using namespace parley::e2e;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;

/// A self-signed RSA certificate for 127.0.0.1 and localhost, made with the openssl CLI.
struct certificate {
  std::string cert;
  std::string key;
};

certificate make_certificate(const scratch_dir& dir, const std::string& common_name) {
  certificate c{dir.file(common_name + ".crt"), dir.file(common_name + ".key")};
  auto command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + common_name +
                 " -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + c.key + " -out " +
                 c.cert + " >/dev/null 2>&1";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, "openssl could not make a certificate: " << command);
  return c;
}

server_options tls_options(const certificate& c) {
  server_options opts;
  opts.ini["tls.certificate"] = "\"" + c.cert + "\"";
  opts.ini["tls.key"] = "\"" + c.key + "\"";
  return opts;
}

/// Sends `request` in plaintext and returns everything the server answers until it closes.
std::string plaintext_exchange(uint16_t port, const std::string& request) {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  stream.expires_after(default_wait);
  beast::error_code ec;
  stream.async_connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port},
                       [&](beast::error_code e) { ec = e; });
  ioc.run();
  REQUIRE_FALSE(ec);
  ioc.restart();
  asio::async_write(stream, asio::buffer(request), [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  REQUIRE_FALSE(ec);
  std::string answer;
  auto sink = asio::dynamic_buffer(answer);
  ioc.restart();
  asio::async_read(stream, sink, [&](beast::error_code e, std::size_t) { ec = e; });
  ioc.run();
  CHECK_MESSAGE(ec == asio::error::eof, "the server did not close the connection: " << ec.message());
  return answer;
}

} // namespace

TEST_CASE("chat works end to end over wss") {
  scratch_dir dir;
  auto cert = make_certificate(dir, "parley-test");
  server_process server{tls_options(cert)};

  wss_client alice;
  auto welcome = alice.connect(server.port(), "alice");
  CHECK(welcome["type"] == "welcome");
  CHECK(alice.peer_common_name() == "parley-test");
  wss_client bob;
  bob.connect(server.port(), "bob");
  alice.send({{"type", "join"}, {"room", "secure"}});
  alice.next_of_type("joined");
  bob.send({{"type", "join"}, {"room", "secure"}});
  bob.next_of_type("joined");
  alice.send({{"type", "send"}, {"room", "secure"}, {"text", "over tls"}, {"cid", "c1"}});
  auto got = bob.next_of_type("message");
  CHECK(got["text"] == "over tls");
  CHECK(got["from"] == "alice");
}

TEST_CASE("https serves the chat page and /healthz on the TLS port") {
  scratch_dir dir;
  auto cert = make_certificate(dir, "parley-test");
  server_process server{tls_options(cert)};
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  ctx.set_verify_mode(ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream{ioc, ctx};
  beast::get_lowest_layer(stream).expires_after(default_wait);
  beast::get_lowest_layer(stream).connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), server.port()});
  stream.handshake(ssl::stream_base::client);
  for (std::string target : {"/healthz", "/"}) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(server.port()));
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    CHECK_MESSAGE(res.result_int() == 200, target << " answered " << res.result_int());
    CHECK(!res.body().empty());
  }
}

TEST_CASE("only TLS 1.2 and 1.3 with forward-secret AEAD ciphers are accepted") {
  scratch_dir dir;
  auto cert = make_certificate(dir, "parley-test");
  server_process server{tls_options(cert)};

  for (int version : {TLS1_VERSION, TLS1_1_VERSION}) {
    wss_client old{tls_offer{version, version, {}}};
    CHECK_MESSAGE(old.handshake_tls(server.port()), "TLS version " << std::hex << version << " was accepted");
  }
  wss_client tls12{tls_offer{TLS1_2_VERSION, TLS1_2_VERSION, {}}};
  REQUIRE_FALSE(tls12.handshake_tls(server.port()));
  CHECK(tls12.version() == "TLSv1.2");
  wss_client tls13;
  REQUIRE_FALSE(tls13.handshake_tls(server.port()));
  CHECK(tls13.version() == "TLSv1.3");
  // RSA key exchange (no forward secrecy) and CBC are refused even on TLS 1.2.
  for (std::string weak : {"AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"}) {
    wss_client client{tls_offer{TLS1_2_VERSION, TLS1_2_VERSION, weak}};
    CHECK_MESSAGE(client.handshake_tls(server.port()), weak << " was accepted");
  }
}

TEST_CASE("a plaintext client on the TLS port gets a 400 that says so, then the close") {
  scratch_dir dir;
  auto cert = make_certificate(dir, "parley-test");
  server_process server{tls_options(cert)};
  auto host = "127.0.0.1:" + std::to_string(server.port());
  auto answer = plaintext_exchange(server.port(), "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  CHECK_MESSAGE(answer.rfind("HTTP/1.1 400", 0) == 0, answer);
  CHECK(answer.find("Connection: close") != std::string::npos);
  CHECK(answer.find("use https:// or wss://") != std::string::npos);
  // A ws:// client is told the same way instead of hanging until a timeout.
  auto upgrade = plaintext_exchange(
    server.port(), "GET /ws HTTP/1.1\r\nHost: " + host +
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  CHECK_MESSAGE(upgrade.rfind("HTTP/1.1 400", 0) == 0, upgrade);
}

TEST_CASE("SIGHUP reloads the certificate for new connections without dropping open ones") {
  scratch_dir dir;
  auto first = make_certificate(dir, "first");
  auto second = make_certificate(dir, "second");
  // The server reads the files at a fixed path; the test swaps their contents.
  certificate live{dir.file("live.crt"), dir.file("live.key")};
  std::filesystem::copy_file(first.cert, live.cert);
  std::filesystem::copy_file(first.key, live.key);
  server_process server{tls_options(live)};

  wss_client before;
  before.connect(server.port(), "before");
  CHECK(before.peer_common_name() == "first");
  before.send({{"type", "join"}, {"room", "reload"}});
  before.next_of_type("joined");

  std::filesystem::copy_file(second.cert, live.cert, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(second.key, live.key, std::filesystem::copy_options::overwrite_existing);
  server.send_signal(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() + default_wait;
  while (server.output().find("reloaded its TLS certificate") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  REQUIRE_MESSAGE(server.output().find("reloaded its TLS certificate") != std::string::npos,
                  server.output());

  wss_client after;
  after.connect(server.port(), "after");
  CHECK(after.peer_common_name() == "second");
  after.send({{"type", "join"}, {"room", "reload"}});
  after.next_of_type("joined");
  // The connection made before the reload still chats both ways.
  before.send({{"type", "send"}, {"room", "reload"}, {"text", "still here"}, {"cid", "c1"}});
  CHECK(after.next_of_type("message")["from"] == "before");
  after.send({{"type", "send"}, {"room", "reload"}, {"text", "welcome back"}, {"cid", "c2"}});
  CHECK(before.next_of_type("message", "welcome back")["from"] == "after");

  // A broken file is refused and the server keeps serving with the certificate it has.
  {
    std::ofstream broken(live.cert, std::ios::trunc);
    broken << "not a certificate\n";
  }
  server.send_signal(SIGHUP);
  deadline = std::chrono::steady_clock::now() + default_wait;
  while (server.output().find("keeps its TLS certificate") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK_MESSAGE(server.output().find("keeps its TLS certificate") != std::string::npos, server.output());
  wss_client later;
  later.connect(server.port(), "later");
  CHECK(later.peer_common_name() == "second");
}

TEST_CASE("a TLS key that does not match its certificate stops start-up with a clear message") {
  scratch_dir dir;
  auto one = make_certificate(dir, "one");
  auto other = make_certificate(dir, "other");
  auto opts = tls_options(certificate{one.cert, other.key});
  opts.expect_listening = false;
  server_process server{opts};
  auto status = server.wait_for_exit(10s);
  REQUIRE(status);
  CHECK_FALSE((status->exited && status->code == 0));
  CHECK_MESSAGE(server.output().find("cannot serve TLS: cannot load the TLS key '" + other.key) !=
                  std::string::npos,
                server.output());
}

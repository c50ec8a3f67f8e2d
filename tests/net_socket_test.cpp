// The network layer over real loopback sockets, in one process: a server on 127.0.0.1 port 0, a
// fake session actor that records what it receives, and Beast clients.

#include "actors/actors.hpp"
#include "metrics/server_metrics.hpp"
#include "net/connection_sink.hpp"
#include "net/server.hpp"
#include "protocol/codec.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace parley;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// -- the fake session side --------------------------------------------------------------------------

/// Everything the fake sessions saw, shared with the test thread.
struct recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<protocol::inbound> inbound;
  std::vector<frame_sink_ptr> sinks;
  std::vector<std::string> names;
  std::vector<session_actor> actors;
  int disconnects = 0;
  /// While set, sessions play an actor that has fallen behind: they record what arrives but do not
  /// tell the sink they took it (frame_sink::inbound_taken), as if it still sat in the mailbox.
  bool stalled = false;
  std::size_t untaken = 0;

  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock{mutex};
    return cv.wait_for(lock, timeout, [&] { return pred(); });
  }

  frame_sink_ptr sink(std::size_t i = 0) {
    std::lock_guard<std::mutex> lock{mutex};
    return i < sinks.size() ? sinks[i] : nullptr;
  }
};

session_actor spawn_recording_session(caf::actor_system& sys, std::shared_ptr<recorder> rec,
                                      frame_sink_ptr sink) {
  // The recorder travels as a spawn argument, not a capture: CAF 0.17 dereferences a null argument
  // tuple for argument-less function actors, which UBSan reports.
  auto fun = [](session_actor::pointer self, std::shared_ptr<recorder> rec,
                frame_sink_ptr sink) -> session_actor::behavior_type {
    return {
      [rec, sink](inbound_atom, protocol::inbound in) {
        std::lock_guard<std::mutex> lock{rec->mutex};
        if (rec->stalled)
          ++rec->untaken;
        else
          sink->inbound_taken();
        rec->inbound.push_back(std::move(in));
        rec->cv.notify_all();
      },
      [rec, self](disconnect_atom) {
        {
          std::lock_guard<std::mutex> lock{rec->mutex};
          ++rec->disconnects;
          rec->cv.notify_all();
        }
        self->quit();
      },
      [](moved_atom, std::string, room_actor) {},
      [](closed_atom, std::string) {},
      [](kicked_atom, std::string, std::string) {},
      [](banned_atom, moderation_record) {},
      [](get_atom, info_atom) { return session_info{}; },
      [](deadline_atom, uint64_t) {},
      [](reauth_atom, uint64_t) {},
    };
  };
  return sys.spawn(fun, std::move(rec), std::move(sink));
}

/// A server on a free loopback port whose sessions record into `rec`.
struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<recorder> rec = std::make_shared<recorder>();
  settings s;
  protocol::codec_limits limits;
  std::unique_ptr<net::server> srv;

  fixture() {
    s.server.address = "127.0.0.1";
    s.server.port = 0;
    s.server.io_threads = 2;
    s.server.shutdown_grace = 2s;
    s.connection.write_timeout = 2s;
  }

  ~fixture() {
    srv.reset();
    std::lock_guard<std::mutex> lock{rec->mutex};
    for (auto& a : rec->actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  void start() {
    srv = std::make_unique<net::server>(
      s, limits, [this](frame_sink_ptr sink, std::optional<auth::identity> who) -> session_actor {
        std::string name = who ? who->user : std::string{};
        auto a = spawn_recording_session(sys, rec, sink);
        std::lock_guard<std::mutex> lock{rec->mutex};
        rec->sinks.push_back(std::move(sink));
        rec->names.push_back(std::move(name));
        rec->actors.push_back(a);
        rec->cv.notify_all();
        return a;
      });
    REQUIRE(srv->start());
    REQUIRE(srv->port() != 0);
  }

  frame_sink_ptr wait_sink(std::size_t i = 0) {
    REQUIRE(rec->wait_for([&] { return rec->sinks.size() > i; }));
    return rec->sink(i);
  }

  bool wait_disconnects(int n, std::chrono::milliseconds timeout = 5s) {
    return rec->wait_for([&] { return rec->disconnects >= n; }, timeout);
  }
};

// -- clients --------------------------------------------------------------------------------------

/// Runs one asynchronous client operation to completion or a deadline (then cancels it).
template <class Stream, class Start>
beast::error_code run_op(asio::io_context& ioc, Stream& lowest, Start start,
                         std::chrono::milliseconds timeout = 5s) {
  std::optional<beast::error_code> result;
  start([&](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!result && ioc.run_one_until(deadline) > 0) {
    // nop
  }
  if (!result) {
    beast::error_code ignored;
    lowest.close(ignored);
    ioc.restart();
    ioc.run();
    return asio::error::timed_out;
  }
  return *result;
}

/// A WebSocket client with deadlines on every operation.
struct ws_client {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buffer;
  websocket::response_type response;

  beast::error_code connect(uint16_t port, const std::string& target,
                            std::optional<std::string> origin = std::nullopt, int rcvbuf = 0) {
    auto& sock = ws.next_layer();
    sock.open(tcp::v4());
    if (rcvbuf > 0)
      sock.set_option(asio::socket_base::receive_buffer_size(rcvbuf));
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
    if (origin)
      ws.set_option(websocket::stream_base::decorator(
        [o = *origin](websocket::request_type& req) { req.set(http::field::origin, o); }));
    auto host = "127.0.0.1:" + std::to_string(port);
    return run_op(ioc, sock, [&](auto h) { ws.async_handshake(response, host, target, h); });
  }

  beast::error_code read(std::string& out, std::chrono::milliseconds timeout = 5s) {
    buffer.clear();
    auto ec = run_op(ioc, ws.next_layer(), [&](auto h) { ws.async_read(buffer, h); }, timeout);
    out = beast::buffers_to_string(buffer.data());
    return ec;
  }

  beast::error_code write(const std::string& text, bool binary = false) {
    ws.binary(binary);
    return run_op(ioc, ws.next_layer(), [&](auto h) { ws.async_write(asio::buffer(text), h); });
  }

  /// Reads until the connection ends; returns the close code (0 when there was no close frame).
  uint16_t read_until_closed(std::size_t* frames = nullptr, std::chrono::milliseconds timeout = 5s) {
    std::string msg;
    for (;;) {
      auto ec = read(msg, timeout);
      if (ec)
        return ec == websocket::error::closed ? ws.reason().code : 0;
      if (frames)
        ++*frames;
    }
  }
};

struct http_reply {
  beast::error_code ec;
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string content_length;
};

/// Sends one request (or several on one keep-alive connection) and reads the replies.
std::vector<http_reply> http_requests(uint16_t port, std::vector<http::request<http::string_body>> reqs) {
  asio::io_context ioc;
  tcp::socket sock{ioc};
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  beast::flat_buffer buffer;
  std::vector<http_reply> replies;
  for (auto& req : reqs) {
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.prepare_payload();
    http_reply r;
    r.ec = run_op(ioc, sock, [&](auto h) { http::async_write(sock, req, h); });
    http::response_parser<http::string_body> parser;
    parser.skip(req.method() == http::verb::head); // a HEAD reply announces a body it lacks
    if (!r.ec)
      r.ec = run_op(ioc, sock, [&](auto h) { http::async_read(sock, buffer, parser, h); });
    auto& res = parser.get();
    r.status = res.result_int();
    r.body = res.body();
    r.content_type = std::string{res[http::field::content_type]};
    r.content_length = std::string{res[http::field::content_length]};
    replies.push_back(std::move(r));
  }
  return replies;
}

http_reply http_request(uint16_t port, http::verb verb, const std::string& target,
                        std::vector<std::pair<http::field, std::string>> headers = {}) {
  http::request<http::string_body> req{verb, target, 11};
  for (auto& [f, v] : headers)
    req.set(f, v);
  return http_requests(port, {std::move(req)}).front();
}

std::string numbered(std::size_t i, std::size_t size) {
  auto s = std::to_string(i) + ":";
  s.resize(std::max(size, s.size()), 'a' + static_cast<char>(i % 26));
  return s;
}

} // namespace

// -- outbound ---------------------------------------------------------------------------------------

TEST_CASE("a batch of 1000 pushed frames arrives complete and in order") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws?name=alice"));
  auto sink = f.wait_sink();
  CHECK(f.rec->names.front() == "alice");
  // Sizes around the header boundaries, so Beast's parser checks every length encoding.
  std::vector<std::size_t> sizes{0, 1, 125, 126, 127, 65535, 65536, 70000};
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < 1000; ++i)
    sent.push_back(i < sizes.size() ? std::string(sizes[i], 'a' + static_cast<char>(i))
                                    : numbered(i, 20 + i % 300));
  for (auto& text : sent)
    sink->push(make_frame(text), frame_priority::essential);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    std::string got;
    REQUIRE_FALSE(c.read(got));
    CAPTURE(i);
    REQUIRE(got == sent[i]);
  }
}

TEST_CASE("one shared payload pushed to many sinks reaches every client") {
  fixture f;
  f.start();
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::make_unique<ws_client>());
    REQUIRE_FALSE(clients.back()->connect(f.srv->port(), "/ws"));
  }
  f.wait_sink(19);
  auto payload = make_frame(R"({"type":"message","text":"hello everyone"})");
  for (int round = 0; round < 3; ++round)
    for (std::size_t i = 0; i < 20; ++i)
      f.rec->sink(i)->push(payload, frame_priority::essential);
  for (auto& c : clients)
    for (int round = 0; round < 3; ++round) {
      std::string got;
      REQUIRE_FALSE(c->read(got));
      CHECK(got == *payload);
    }
  CHECK(f.rec->names.front().empty()); // no ?name=: the session picks a guest name
}

TEST_CASE("frames pushed from several threads at once arrive intact and in per-thread order") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  auto sink = f.wait_sink();
  constexpr int threads = 4;
  constexpr int per_thread = 500;
  std::vector<std::thread> pushers;
  for (int t = 0; t < threads; ++t)
    pushers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto text = std::to_string(t) + ":" + std::to_string(i) + ":";
        text.resize(text.size() + static_cast<std::size_t>((i * 37) % 400), 'a' + t);
        sink->push(make_frame(std::move(text)), frame_priority::essential);
      }
    });
  for (auto& p : pushers)
    p.join();
  std::vector<int> next(threads, 0);
  for (int n = 0; n < threads * per_thread; ++n) {
    std::string got;
    REQUIRE_FALSE(c.read(got));
    auto colon = got.find(':');
    auto colon2 = got.find(':', colon + 1);
    REQUIRE(colon2 != std::string::npos);
    int t = std::stoi(got.substr(0, colon));
    int i = std::stoi(got.substr(colon + 1, colon2 - colon - 1));
    REQUIRE(t >= 0);
    REQUIRE(t < threads);
    CHECK(i == next[t]);
    next[t] = i + 1;
    auto padding = got.substr(colon2 + 1);
    CHECK(padding.size() == static_cast<std::size_t>((i * 37) % 400));
    CHECK(padding.find_first_not_of(static_cast<char>('a' + t)) == std::string::npos);
  }
}

TEST_CASE("closing the sink sends the close frame after what was already queued") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  auto sink = f.wait_sink();
  for (int i = 0; i < 3; ++i)
    sink->push(make_frame("frame " + std::to_string(i)), frame_priority::essential);
  sink->close(close_code::abuse, "bye");
  sink->push(make_frame("too late"), frame_priority::essential);
  std::size_t frames = 0;
  CHECK(c.read_until_closed(&frames) == close_code::abuse);
  CHECK(frames == 3);
  CHECK(c.ws.reason().reason == "bye");
  REQUIRE(f.wait_disconnects(1));
  std::this_thread::sleep_for(100ms);
  CHECK(f.rec->disconnects == 1);
}

TEST_CASE("a client that never reads is disconnected once its queue passes the hard mark") {
  fixture f;
  f.s.connection.queue_soft_bytes = 64 * 1024;
  f.s.connection.queue_hard_bytes = 256 * 1024;
  f.s.connection.write_timeout = 500ms;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws", std::nullopt, 4096));
  auto sink = f.wait_sink();
  auto big = make_frame(std::string(60 * 1024, 'x'));
  auto* conn = dynamic_cast<net::connection_sink*>(sink.get());
  REQUIRE(conn != nullptr);
  std::size_t max_queued = 0;
  // Far more than the kernel's socket buffers can take: the queue must overflow.
  for (int i = 0; i < 600 && f.rec->disconnects == 0; ++i) {
    sink->push(big, frame_priority::essential);
    max_queued = std::max(max_queued, conn->queued_bytes());
    if (i % 50 == 0)
      std::this_thread::sleep_for(5ms);
  }
  CHECK(max_queued <= f.s.connection.queue_hard_bytes);
  REQUIRE(f.wait_disconnects(1, 5s));
  // The sink outlives the connection: pushes now simply drop.
  for (int i = 0; i < 10; ++i)
    sink->push(big, frame_priority::essential);
  CHECK(conn->queued_bytes() == 0);
  // The client sees the end of the connection (the close frame, if it got through first, says 4000).
  auto code = c.read_until_closed(nullptr, 5s);
  CHECK((code == 0 || code == close_code::slow_consumer));
}

TEST_CASE("a slow client that reads late sees the slow_consumer close code") {
  fixture f;
  f.s.connection.queue_soft_bytes = 32 * 1024;
  f.s.connection.queue_hard_bytes = 128 * 1024;
  f.s.connection.write_timeout = 5s;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws", std::nullopt, 4096));
  auto sink = f.wait_sink();
  sink->push(make_frame("first"), frame_priority::essential);
  std::string got;
  REQUIRE_FALSE(c.read(got));
  CHECK(got == "first");
  auto big = make_frame(std::string(16 * 1024, 'y'));
  auto* conn = dynamic_cast<net::connection_sink*>(sink.get());
  REQUIRE(conn != nullptr);
  for (int i = 0; i < 2000 && conn->accepting_data(); ++i)
    sink->push(big, frame_priority::essential);
  REQUIRE_FALSE(conn->accepting_data());
  // Frames already handed to the socket may still arrive; then the close frame.
  CHECK(c.read_until_closed() == close_code::slow_consumer);
  CHECK(c.ws.reason().reason == "slow consumer, reconnect");
  REQUIRE(f.wait_disconnects(1));
}

TEST_CASE("droppable frames past the soft mark are dropped while essential ones still arrive") {
  fixture f;
  f.s.connection.queue_soft_bytes = 1024;
  f.s.connection.queue_hard_bytes = 1024 * 1024;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  auto sink = f.wait_sink();
  auto* conn = dynamic_cast<net::connection_sink*>(sink.get());
  REQUIRE(conn != nullptr);
  // Pushed faster than the strand can start a write, so the queue passes 1 KiB at once.
  for (int i = 0; i < 50; ++i) {
    sink->push(make_frame(std::string(100, 'e')), frame_priority::essential);
    sink->push(make_frame("typing"), frame_priority::droppable);
  }
  sink->push(make_frame("end"), frame_priority::essential);
  int essential = 0;
  int droppable = 0;
  for (;;) {
    std::string got;
    REQUIRE_FALSE(c.read(got));
    if (got == "end")
      break;
    (got == "typing" ? droppable : essential)++;
  }
  CHECK(essential == 50);
  CHECK(droppable + static_cast<int>(conn->dropped()) == 50);
  CHECK(conn->dropped() > 0);
}

TEST_CASE("a client that floods pings without reading cannot grow its queue: pongs coalesce") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws", std::nullopt, 4096));
  auto sink = f.wait_sink();
  auto* conn = dynamic_cast<net::connection_sink*>(sink.get());
  REQUIRE(conn != nullptr);
  // Masked pings with an all-zero key and a 4-byte payload, written straight to the socket.
  std::string ping{"\x89\x84\0\0\0\0ping", 10};
  std::string burst;
  for (int i = 0; i < 1000; ++i)
    burst += ping;
  constexpr int bursts = 200;  // 200,000 pings, none of whose pongs is read meanwhile
  std::size_t max_queued = 0;
  auto& sock = c.ws.next_layer();
  for (int i = 0; i < bursts; ++i) {
    beast::error_code ec;
    asio::write(sock, asio::buffer(burst), ec);
    REQUIRE_FALSE(ec);
    max_queued = std::max(max_queued, conn->queued_bytes());
  }
  CHECK(max_queued <= 1024);
  // A text frame behind the pings: once the session has it, the server has parsed every ping
  // (the kernel's buffers can hold the whole flood before the server reads any of it).
  std::string marker{"\x81\x84\0\0\0\0{}{}", 10};
  beast::error_code marker_ec;
  asio::write(sock, asio::buffer(marker), marker_ec);
  REQUIRE_FALSE(marker_ec);
  REQUIRE(f.rec->wait_for([&] { return !f.rec->inbound.empty(); }));
  // The connection is healthy: a frame pushed now arrives behind far fewer pongs than pings sent.
  sink->push(make_frame("after the flood"), frame_priority::essential);
  std::size_t pongs = 0;
  c.ws.control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong)
      ++pongs;
  });
  std::string got;
  REQUIRE_FALSE(c.read(got));
  CHECK(got == "after the flood");
  CHECK(pongs >= 1);
  CHECK(pongs < bursts * 1000 / 10);
  CHECK(f.rec->disconnects == 0);
}

// -- inbound ----------------------------------------------------------------------------------------

TEST_CASE("a session that falls behind stops its socket being read until it catches up") {
  fixture f;
  f.start();
  {
    std::lock_guard<std::mutex> lock{f.rec->mutex};
    f.rec->stalled = true;
  }
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  auto sink = f.wait_sink();
  // 2,000 small frames in one write: all of them reach the server's socket at once.
  constexpr int frames = 2000;
  std::string burst;
  for (int i = 0; i < frames; ++i) {
    auto text = R"({"type":"send","room":"r","text":")" + std::to_string(i) + R"("})";
    REQUIRE(text.size() < 126);
    burst += static_cast<char>(0x81);
    burst += static_cast<char>(0x80 | text.size());
    burst.append(4, '\0');  // an all-zero mask leaves the payload as it is
    burst += text;
  }
  beast::error_code ec;
  asio::write(c.ws.next_layer(), asio::buffer(burst), ec);
  REQUIRE_FALSE(ec);
  constexpr auto limit = net::connection_sink::inbound_limit;
  REQUIRE(f.rec->wait_for([&] { return f.rec->inbound.size() >= limit; }));
  // The session is behind: nothing more is read, however long it waits.
  std::this_thread::sleep_for(300ms);
  {
    std::lock_guard<std::mutex> lock{f.rec->mutex};
    CHECK(f.rec->inbound.size() == limit);
  }
  // It catches up: the connection reads again, and every frame arrives once, in order.
  {
    std::lock_guard<std::mutex> lock{f.rec->mutex};
    f.rec->stalled = false;
    for (; f.rec->untaken > 0; --f.rec->untaken)
      sink->inbound_taken();
  }
  bool all = f.rec->wait_for([&] { return f.rec->inbound.size() >= frames; });
  std::lock_guard<std::mutex> lock{f.rec->mutex};
  REQUIRE_MESSAGE(all, f.rec->inbound.size() << " of " << frames << " frames arrived");
  REQUIRE(f.rec->inbound.size() == frames);
  for (int i = 0; i < frames; ++i) {
    auto* send = std::get_if<protocol::send_cmd>(&f.rec->inbound[i].cmd);
    REQUIRE(send != nullptr);
    CHECK(send->text == std::to_string(i));
  }
  CHECK(f.rec->disconnects == 0);
}

TEST_CASE("text frames reach the session decoded, in order") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  f.wait_sink();
  // A long frame too, assembled from several reads.
  std::string long_text(5000, 'z');
  REQUIRE_FALSE(c.write(R"({"type":"ping","ref":1})"));
  REQUIRE_FALSE(c.write(R"({"type":"send","room":"general","text":")" + long_text + R"(","ref":2})"));
  REQUIRE_FALSE(c.write("not json"));
  REQUIRE(f.rec->wait_for([&] { return f.rec->inbound.size() >= 3; }));
  std::lock_guard<std::mutex> lock{f.rec->mutex};
  CHECK(std::holds_alternative<protocol::ping_cmd>(f.rec->inbound[0].cmd));
  CHECK(f.rec->inbound[0].ref == std::optional<std::string>{"1"});
  CHECK(f.rec->inbound[1].ref == std::optional<std::string>{"2"});
  auto* err = std::get_if<protocol::decode_error>(&f.rec->inbound[2].cmd);
  REQUIRE(err != nullptr);
  CHECK(err->code == protocol::error_code::bad_json);
}

TEST_CASE("a binary frame reaches the session as binary_not_supported and the connection stays") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  auto sink = f.wait_sink();
  REQUIRE_FALSE(c.write(std::string("\x01\x02\x03", 3), true));
  REQUIRE(f.rec->wait_for([&] { return f.rec->inbound.size() >= 1; }));
  {
    std::lock_guard<std::mutex> lock{f.rec->mutex};
    auto* err = std::get_if<protocol::decode_error>(&f.rec->inbound[0].cmd);
    REQUIRE(err != nullptr);
    CHECK(err->code == protocol::error_code::binary_not_supported);
  }
  sink->push(make_frame("still here"), frame_priority::essential);
  std::string got;
  REQUIRE_FALSE(c.read(got));
  CHECK(got == "still here");
  CHECK(f.rec->disconnects == 0);
}

TEST_CASE("a frame over max_frame_bytes makes the client see close code 1009") {
  fixture f;
  f.s.connection.max_frame_bytes = 64 * 1024;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
  f.wait_sink();
  auto ec = c.write(std::string(200 * 1024, 'q'));
  // The server may close before the client has written all of it.
  CHECK((!ec || ec == asio::error::broken_pipe || ec == asio::error::connection_reset));
  CHECK(c.read_until_closed() == close_code::too_big);
  REQUIRE(f.wait_disconnects(1));
  CHECK(f.rec->inbound.empty());
}

TEST_CASE("the session learns exactly once that its client went away") {
  fixture f;
  f.start();
  {
    ws_client c;
    REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
    f.wait_sink();
    REQUIRE_FALSE(run_op(c.ioc, c.ws.next_layer(), [&](auto h) {
      c.ws.async_close(websocket::close_code::normal, h);
    }));
  }
  {
    ws_client c;
    REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
    f.wait_sink(1);
    c.ws.next_layer().close(); // no close handshake at all
  }
  REQUIRE(f.wait_disconnects(2));
  std::this_thread::sleep_for(200ms);
  CHECK(f.rec->disconnects == 2);
  CHECK(f.srv->connections() == 0);
}

TEST_CASE("a silent peer is dropped after the idle timeout while a reading one stays") {
  fixture f;
  f.s.connection.idle_timeout = 1s;
  f.start();
  ws_client silent;
  REQUIRE_FALSE(silent.connect(f.srv->port(), "/ws"));
  f.wait_sink(0);
  ws_client alive;
  REQUIRE_FALSE(alive.connect(f.srv->port(), "/ws"));
  f.wait_sink(1);
  // The reading client answers the server's keep-alive pings while its read waits.
  std::string got;
  beast::error_code ec;
  std::thread reader{[&] { ec = alive.read(got, 6s); }};
  CHECK(f.wait_disconnects(1, 3s));
  std::this_thread::sleep_for(2s); // two more idle periods
  CHECK(f.rec->disconnects == 1);
  f.rec->sink(1)->push(make_frame("still here"), frame_priority::essential);
  reader.join();
  CHECK_FALSE(ec);
  CHECK(got == "still here");
}

TEST_CASE("an invalid name gets one invalid_name error frame and close code 4001") {
  fixture f;
  f.start();
  ws_client c;
  REQUIRE_FALSE(c.connect(f.srv->port(), "/ws?name=no%20spaces!"));
  std::string got;
  REQUIRE_FALSE(c.read(got));
  CHECK(got.find(R"("type":"error")") != std::string::npos);
  CHECK(got.find(R"("code":"invalid_name")") != std::string::npos);
  CHECK(got.find(R"("ref":null)") != std::string::npos);
  CHECK(c.read_until_closed() == close_code::invalid_name);
  CHECK(f.rec->sinks.empty());
}

TEST_CASE("stopping the server closes every connection with 1001") {
  fixture f;
  f.start();
  ws_client a;
  ws_client b;
  REQUIRE_FALSE(a.connect(f.srv->port(), "/ws"));
  REQUIRE_FALSE(b.connect(f.srv->port(), "/ws"));
  f.wait_sink(1);
  auto started = std::chrono::steady_clock::now();
  std::thread stopper{[&] { f.srv->stop(); }};
  CHECK(a.read_until_closed() == close_code::going_away);
  CHECK(a.ws.reason().reason == "server shutting down");
  CHECK(b.read_until_closed() == close_code::going_away);
  stopper.join();
  // Both answered the close, so stop() did not need the whole grace period.
  CHECK(std::chrono::steady_clock::now() - started < 1500ms);
  CHECK(f.wait_disconnects(2));
}

// -- HTTP -------------------------------------------------------------------------------------------

TEST_CASE("an upgrade from a foreign Origin is answered with 403") {
  fixture f;
  f.start();
  auto port = f.srv->port();
  {
    ws_client c;
    auto ec = c.connect(port, "/ws", "http://evil.example");
    CHECK(ec);
    CHECK(c.response.result_int() == 403);
  }
  {
    ws_client c;
    CHECK_FALSE(c.connect(port, "/ws", "http://127.0.0.1:" + std::to_string(port)));
  }
  CHECK(f.wait_sink(0));
  CHECK(f.rec->sinks.size() == 1);
}

TEST_CASE("only configured origins may upgrade when a list is set") {
  fixture f;
  f.s.server.allowed_origins = {"https://chat.example.com"};
  f.start();
  auto port = f.srv->port();
  {
    ws_client c;
    CHECK_FALSE(c.connect(port, "/ws", std::string{"https://chat.example.com"}));
  }
  {
    ws_client c;
    CHECK(c.connect(port, "/ws", "http://127.0.0.1:" + std::to_string(port)));
    CHECK(c.response.result_int() == 403);
  }
}

TEST_CASE("the HTTP side serves healthz, static files and 404s on one keep-alive connection, "
          "which a 405 ends") {
  namespace fs = std::filesystem;
  auto root = fs::temp_directory_path() / ("parley_net_socket_" + std::to_string(::getpid()));
  fs::create_directories(root / "web");
  std::ofstream{root / "web" / "index.html"} << "<h1>parley</h1>";
  std::ofstream{root / "web" / "app.js"} << "let x = 1;";
  std::ofstream{root / "secret.txt"} << "secret";
  fixture f;
  f.s.server.web_root = (root / "web").string();
  f.start();
  auto port = f.srv->port();

  std::vector<http::request<http::string_body>> reqs;
  reqs.emplace_back(http::verb::get, "/healthz", 11);
  reqs.emplace_back(http::verb::get, "/", 11);
  reqs.emplace_back(http::verb::get, "/app.js", 11);
  reqs.emplace_back(http::verb::get, "/nope.html", 11);
  reqs.emplace_back(http::verb::head, "/app.js", 11);
  // An error other than 404 closes the connection (Connection: close): it comes last.
  reqs.emplace_back(http::verb::post, "/", 11);
  auto replies = http_requests(port, std::move(reqs));
  REQUIRE(replies.size() == 6);
  for (auto& r : replies)
    REQUIRE_FALSE(r.ec);
  CHECK(replies[0].status == 200);
  CHECK(replies[0].body == "ok");
  CHECK(replies[1].status == 200);
  CHECK(replies[1].body == "<h1>parley</h1>");
  CHECK(replies[1].content_type == "text/html; charset=utf-8");
  CHECK(replies[2].status == 200);
  CHECK(replies[2].content_type == "text/javascript; charset=utf-8");
  CHECK(replies[3].status == 404);
  CHECK(replies[4].status == 200);
  CHECK(replies[4].body.empty());
  CHECK(replies[4].content_length == "10");
  CHECK(replies[5].status == 405);
  CHECK(http_request(port, http::verb::get, "/ws").status == 426);

  for (auto target : {"/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt"}) {
    CAPTURE(target);
    auto r = http_request(port, http::verb::get, target);
    CHECK((r.status == 400 || r.status == 404));
    CHECK(r.body.find("secret") == std::string::npos);
  }
  std::error_code ec;
  fs::remove_all(root, ec);
}

// -- metrics ------------------------------------------------------------------------------------------

namespace {

/// Polls until `done` holds or the timeout passes (connections end on their loop's thread).
template <class F>
bool eventually(F done, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

} // namespace

TEST_CASE("connections are counted when opened and when they end, by close code; refusals by reason") {
  auto& m = metrics::server_metrics();
  auto opened = m.connections_opened.value();
  auto open = m.connections_open.value();
  auto closed_normal = m.connections_closed.with({"1000"}).value();
  auto closed_abuse = m.connections_closed.with({"4002"}).value();
  auto closed_abnormal = m.connections_closed.with({"1006"}).value();
  auto refused_origin = m.handshakes_refused.with({"origin"}).value();
  fixture f;
  f.s.server.allowed_origins = {"https://chat.example"};
  f.start();
  {
    ws_client a;
    REQUIRE_FALSE(a.connect(f.srv->port(), "/ws"));
    f.wait_sink(0);
    ws_client b;
    REQUIRE_FALSE(b.connect(f.srv->port(), "/ws"));
    f.wait_sink(1);
    ws_client c;
    REQUIRE_FALSE(c.connect(f.srv->port(), "/ws"));
    auto sink_c = f.wait_sink(2);
    CHECK(m.connections_opened.value() == opened + 3);
    CHECK(m.connections_open.value() == open + 3);
    // a closes normally, the server closes b with 4002, c just goes away.
    REQUIRE_FALSE(run_op(a.ioc, a.ws.next_layer(), [&](auto h) {
      a.ws.async_close(websocket::close_code::normal, h);
    }));
    f.rec->sink(1)->close(close_code::abuse, "bye");
    CHECK(b.read_until_closed() == close_code::abuse);
    c.ws.next_layer().close();
  }
  CHECK(eventually([&] { return m.connections_open.value() == open; }));
  CHECK(m.connections_closed.with({"1000"}).value() == closed_normal + 1);
  CHECK(m.connections_closed.with({"4002"}).value() == closed_abuse + 1);
  CHECK(m.connections_closed.with({"1006"}).value() == closed_abnormal + 1);

  ws_client refused;
  CHECK(refused.connect(f.srv->port(), "/ws", std::string{"https://evil.example"}));
  CHECK(eventually([&] { return m.handshakes_refused.with({"origin"}).value() == refused_origin + 1; }));
  CHECK(m.connections_opened.value() == opened + 3);
}

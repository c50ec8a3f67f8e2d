// The connection writer over a real loopback socket pair, with its loop driven by the test thread:
// how many batches and system calls frames take (corking), the backlog of a full socket, and the
// close handshake's phases.

#include "metrics/server_metrics.hpp"
#include "net/connection_sink.hpp"
#include "net/connection_writer.hpp"
#include "net/io_loop.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using namespace parley;
using namespace parley::net;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

/// A loop that is not started (the test runs its context), a connected socket pair, and a writer
/// for the server side.
struct writer_fixture {
  io_loop loop{loop_deadlines{60s, 2s}};
  tcp::socket server_side{loop.context()};
  tcp::socket client{loop.context()};
  std::shared_ptr<connection_sink> sink;
  std::unique_ptr<connection_writer<tcp::socket>> writer;
  std::shared_ptr<int> owner = std::make_shared<int>(0);  // stands in for the connection

  explicit writer_fixture(outbound_limits limits = {1 << 20, 8 << 20}, int server_sndbuf = 0,
                          int client_rcvbuf = 0) {
    tcp::acceptor acceptor{loop.context(), {asio::ip::make_address("127.0.0.1"), 0}};
    client.open(tcp::v4());
    if (client_rcvbuf > 0)
      client.set_option(asio::socket_base::receive_buffer_size(client_rcvbuf));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server_side);
    if (server_sndbuf > 0)
      server_side.set_option(asio::socket_base::send_buffer_size(server_sndbuf));
    server_side.non_blocking(true);
    sink = std::make_shared<connection_sink>(limits, loop.wakes());
    writer = std::make_unique<connection_writer<tcp::socket>>(server_side, *sink, loop);
  }

  /// Reads exactly `n` frames the client received (server frames are unmasked) and returns their
  /// payloads, running the loop between reads so that a waiting write can finish.
  std::vector<std::string> read_frames(std::size_t n, uint8_t* last_first_byte = nullptr) {
    std::vector<std::string> out;
    std::string pending;
    std::vector<char> chunk(64 * 1024);
    client.non_blocking(true);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      loop.context().restart();
      loop.context().poll();
      boost::system::error_code ec;
      auto got = client.read_some(asio::buffer(chunk), ec);
      if (ec == asio::error::would_block)
        continue;
      REQUIRE_FALSE(ec);
      pending.append(chunk.data(), got);
      for (;;) {
        if (pending.size() < 2)
          break;
        auto b1 = static_cast<uint8_t>(pending[1]);
        std::size_t head = 2;
        uint64_t len = b1 & 0x7F;
        if (len == 126) {
          if (pending.size() < 4)
            break;
          len = (uint64_t(uint8_t(pending[2])) << 8) | uint8_t(pending[3]);
          head = 4;
        } else if (len == 127) {
          if (pending.size() < 10)
            break;
          len = 0;
          for (int k = 0; k < 8; ++k)
            len = (len << 8) | uint8_t(pending[2 + k]);
          head = 10;
        }
        if (pending.size() < head + len)
          break;
        if (last_first_byte)
          *last_first_byte = static_cast<uint8_t>(pending[0]);
        out.push_back(pending.substr(head, len));
        pending.erase(0, head + len);
      }
    }
    return out;
  }
};

std::string numbered(std::size_t i, std::size_t size) {
  auto s = std::to_string(i) + ":";
  s.resize(std::max(size, s.size()), 'a' + static_cast<char>(i % 26));
  return s;
}

} // namespace

TEST_CASE("a thousand small frames queued before a flush leave in one batch and one system call") {
  writer_fixture f;
  for (std::size_t i = 0; i < 1000; ++i)
    f.sink->push(make_frame(numbered(i, 100)), frame_priority::essential);
  f.writer->flush(f.owner);
  CHECK(f.writer->batches() == 1);
  CHECK(f.writer->write_calls() == 1);
  CHECK(f.writer->backlog_bytes() == 0);  // all of it went at once: the connection kept no copy
  auto frames = f.read_frames(1000);
  REQUIRE(frames.size() == 1000);
  for (std::size_t i = 0; i < frames.size(); ++i)
    CHECK(frames[i] == numbered(i, 100));
  CHECK(f.sink->queued_bytes() == 0);
}

TEST_CASE("large payloads are written in place next to copied small frames, in order") {
  writer_fixture f;
  std::vector<std::string> sent{"small", std::string(100 * 1024, 'L'), "between",
                                std::string(5000, 'M'), "end"};
  for (auto& s : sent)
    f.sink->push(make_frame(s), frame_priority::essential);
  f.writer->flush(f.owner);
  CHECK(f.writer->batches() == 1);
  auto frames = f.read_frames(sent.size());
  CHECK(frames == sent);
}

TEST_CASE("frames pushed while a write waits for a full socket leave together in one batch") {
  // Small socket buffers, so that a few large frames fill them and the writer has to wait.
  writer_fixture f{{1 << 20, 8 << 20}, 4096, 4096};
  auto big = make_frame(std::string(64 * 1024, 'B'));
  std::size_t bigs = 0;
  while (f.writer->backlog_bytes() == 0 && bigs < 100) {
    f.sink->push(big, frame_priority::essential);
    f.writer->flush(f.owner);
    ++bigs;
  }
  REQUIRE(f.writer->backlog_bytes() > 0);  // a write is in flight, waiting for the socket
  auto batches_before = f.writer->batches();
  for (std::size_t i = 0; i < 500; ++i) {
    f.sink->push(make_frame(numbered(i, 50)), frame_priority::essential);
    f.writer->flush(f.owner);  // a flush while waiting does nothing: the frames wait in the sink
  }
  CHECK(f.writer->batches() == batches_before);
  auto frames = f.read_frames(bigs + 500);
  REQUIRE(frames.size() == bigs + 500);
  CHECK(f.writer->batches() == batches_before + 1);
  for (std::size_t i = 0; i < 500; ++i)
    CHECK(frames[bigs + i] == numbered(i, 50));
  // Once drained, the connection gives its backlog back.
  CHECK(f.writer->backlog_bytes() == 0);
  CHECK(f.sink->queued_bytes() == 0);
}

TEST_CASE("a write that cannot finish within write_timeout ends the connection") {
  writer_fixture f{{1 << 20, 8 << 20}, 4096, 4096};
  auto big = make_frame(std::string(64 * 1024, 'B'));
  for (int i = 0; i < 100 && f.writer->backlog_bytes() == 0; ++i) {
    f.sink->push(big, frame_priority::essential);
    f.writer->flush(f.owner);
  }
  REQUIRE(f.writer->backlog_bytes() > 0);
  f.writer->check_deadlines(std::chrono::steady_clock::now() + 1s);
  CHECK(f.writer->phase() == connection_phase::open);
  f.writer->check_deadlines(std::chrono::steady_clock::now() + 3s);
  CHECK(f.writer->phase() == connection_phase::closed);
  CHECK_FALSE(f.server_side.is_open());
  CHECK_FALSE(f.sink->accepting_data());
}

TEST_CASE("a close from the actors goes out after queued frames, then the writer waits for the peer") {
  writer_fixture f;
  f.sink->push(make_frame("one"), frame_priority::essential);
  f.sink->close(close_code::abuse, "bye");
  CHECK_FALSE(f.sink->push(make_frame("too late"), frame_priority::essential));
  f.writer->flush(f.owner);
  CHECK(f.writer->phase() == connection_phase::closing);
  uint8_t first = 0;
  auto frames = f.read_frames(2, &first);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0] == "one");
  CHECK(first == 0x88);
  CHECK(frames[1] == std::string("\x0F\xA2", 2) + "bye");  // 4002
  // The peer answers: the writer shuts its side down once everything is written.
  f.writer->peer_closed(close_code::abuse, f.owner);
  CHECK(f.writer->phase() == connection_phase::half_closed);
  // An unanswered half close ends at the deadline.
  f.writer->check_deadlines(std::chrono::steady_clock::now() + 3s);
  CHECK(f.writer->phase() == connection_phase::closed);
}

TEST_CASE("a peer's close is answered with its code and the writer drains, then shuts down") {
  writer_fixture f;
  f.sink->push(make_frame("last words"), frame_priority::essential);
  f.writer->peer_closed(1000, f.owner);
  CHECK(f.writer->phase() == connection_phase::half_closed);
  uint8_t first = 0;
  auto frames = f.read_frames(2, &first);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0] == "last words");
  CHECK(first == 0x88);
  CHECK(frames[1] == std::string("\x03\xE8", 2));
  // The client sees the end of the stream after the close frame.
  std::array<char, 16> rest{};
  boost::system::error_code ec;
  f.client.non_blocking(false);
  f.client.read_some(asio::buffer(rest), ec);
  CHECK(ec == asio::error::eof);
}

// -- metrics: delivery latency and the close code ---------------------------------------------------

namespace {

/// The shared latency histogram, with what this thread observed flushed into it.
parley::metrics::histogram::snapshot read_latency() {
  parley::metrics::flush_thread_metrics();
  return parley::metrics::server_metrics().delivery_latency.read();
}

uint64_t latency_observations() {
  return read_latency().count;
}

frame stamped(std::string text, std::chrono::steady_clock::duration age) {
  return make_frame(std::move(text), frame_class::message, std::chrono::steady_clock::now() - age);
}

} // namespace

TEST_CASE("each stamped message in a written batch is observed once, with its age; other frames are not") {
  writer_fixture f;
  auto before = read_latency();
  for (int i = 0; i < 3; ++i)
    f.sink->push(stamped("m" + std::to_string(i), 50ms), frame_priority::essential);
  f.sink->push(make_frame("reply"), frame_priority::essential);
  f.sink->push(make_frame("t", frame_class::typing), frame_priority::droppable);
  f.writer->flush(f.owner);
  // Nothing reaches the shared histogram until the thread's batch is flushed (the loop's sweep).
  CHECK(parley::metrics::server_metrics().delivery_latency.read().count == before.count);
  auto after = read_latency();
  CHECK(after.count == before.count + 3);
  CHECK(after.sum - before.sum >= 0.150);
  CHECK(after.sum - before.sum < 0.150 + 3 * 5.0);  // observed now, not at some other time
  CHECK(f.read_frames(5).size() == 5);
}

TEST_CASE("a stamped message whose write waits for the socket is observed when that write completes") {
  writer_fixture f{{1 << 20, 8 << 20}, 4096, 4096};
  auto before = latency_observations();
  auto big = stamped(std::string(64 * 1024, 'B'), 1ms);
  std::size_t bigs = 0;
  while (f.writer->backlog_bytes() == 0 && bigs < 100) {
    f.sink->push(big, frame_priority::essential);
    f.writer->flush(f.owner);
    ++bigs;
  }
  REQUIRE(f.writer->backlog_bytes() > 0);
  // Every batch but the waiting one is on the wire and observed; the waiting one is not yet.
  CHECK(latency_observations() == before + bigs - 1);
  REQUIRE(f.read_frames(bigs).size() == bigs);
  CHECK(latency_observations() == before + bigs);
}

TEST_CASE("the close code is whoever closed first: ours, the peer's, or 1006 without a handshake") {
  {
    writer_fixture f;
    f.sink->close(close_code::abuse, "bye");
    f.writer->flush(f.owner);
    f.writer->peer_closed(close_code::normal, f.owner);
    CHECK(f.writer->close_code() == close_code::abuse);
  }
  {
    writer_fixture f;
    f.writer->peer_closed(close_code::going_away, f.owner);
    CHECK(f.writer->close_code() == close_code::going_away);
  }
  {
    writer_fixture f;
    f.writer->fail(close_code::too_big, "too big", f.owner);
    CHECK(f.writer->close_code() == close_code::too_big);
  }
  {
    writer_fixture f;
    CHECK(f.writer->close_code() == 1006);
    f.writer->abort();
    CHECK(f.writer->close_code() == 1006);
  }
}

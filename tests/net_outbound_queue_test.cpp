// Pure tests of the outbound side: queue policy (marks, accounting, wake-ups, bounded control
// frames) and frame headers.

#include "net/frame_header.hpp"
#include "net/outbound_queue.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace parley;
using namespace parley::net;

namespace {

frame bytes_of(std::size_t n) {
  return make_frame(std::string(n, 'x'));
}

// Wire size of a data frame of n payload bytes.
std::size_t wire(std::size_t n) {
  return n + make_text_header(n).size;
}

} // namespace

TEST_CASE("only the first push into an idle queue asks for a flush") {
  outbound_queue q{{1000, 2000}};
  CHECK(q.push(bytes_of(10), frame_priority::essential) == push_result::wake);
  CHECK(q.push(bytes_of(10), frame_priority::essential) == push_result::queued);
  CHECK(q.push_control(opcode::pong, bytes_of(4)) == push_result::queued);
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch));
  CHECK(batch.size() == 3);
  CHECK(q.busy());
  CHECK(q.push(bytes_of(10), frame_priority::essential) == push_result::queued);
  q.release_batch();
  batch.clear();
  REQUIRE(q.take(batch));
  CHECK(batch.size() == 1);
  q.release_batch();
  batch.clear();
  CHECK_FALSE(q.take(batch));
  CHECK_FALSE(q.busy());
  CHECK(q.push(bytes_of(10), frame_priority::essential) == push_result::wake);
}

TEST_CASE("past the soft mark droppable frames are dropped and counted while essential ones queue") {
  outbound_queue q{{100, 1000}};
  CHECK(q.push(bytes_of(90), frame_priority::droppable) == push_result::wake);
  CHECK(q.queued_bytes() == wire(90));
  CHECK(q.push(bytes_of(20), frame_priority::droppable) == push_result::dropped);
  CHECK(q.push(bytes_of(20), frame_priority::droppable) == push_result::dropped);
  CHECK(q.dropped() == 2);
  CHECK(q.push(bytes_of(20), frame_priority::essential) == push_result::queued);
  CHECK(q.queued_bytes() == wire(90) + wire(20));
  CHECK(q.pending_items() == 2);
}

TEST_CASE("a push that would pass the hard mark is refused, discards pending data and closes") {
  outbound_queue q{{100, 300}};
  REQUIRE(q.push(bytes_of(100), frame_priority::essential) == push_result::wake);
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch)); // being written: stays
  REQUIRE(q.push(bytes_of(100), frame_priority::essential) == push_result::queued);
  REQUIRE(q.push_control(opcode::pong, bytes_of(2)) == push_result::queued);
  CHECK(q.push(bytes_of(100), frame_priority::essential) == push_result::overflow);
  CHECK_FALSE(q.accepting_data());
  // Pending data went, the control frame and the batch in flight stay.
  CHECK(q.pending_items() == 1);
  CHECK(q.queued_bytes() == wire(100) + 2 + 2);
  CHECK(q.push(bytes_of(1), frame_priority::essential) == push_result::closed);
  CHECK(q.push(bytes_of(1), frame_priority::droppable) == push_result::closed);
  // The close frame the connection sends next still gets in.
  CHECK(q.push_control(opcode::close, bytes_of(4)) == push_result::queued);
}

TEST_CASE("a single frame bigger than the hard mark overflows even an empty queue") {
  outbound_queue q{{100, 300}};
  CHECK(q.push(bytes_of(400), frame_priority::essential) == push_result::overflow);
  CHECK(q.queued_bytes() == 0);
}

TEST_CASE("bytes of a taken batch count until the batch is released") {
  outbound_queue q{{1000, 1000}};
  q.push(bytes_of(300), frame_priority::essential);
  q.push(bytes_of(300), frame_priority::essential);
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch));
  CHECK(q.queued_bytes() == 2 * wire(300));
  CHECK(q.pending_items() == 0);
  q.push(bytes_of(300), frame_priority::essential);
  CHECK(q.queued_bytes() == 3 * wire(300));
  // A fourth would pass the hard mark while the batch is still being written.
  CHECK(q.push(bytes_of(300), frame_priority::essential) == push_result::overflow);

  outbound_queue r{{1000, 1000}};
  r.push(bytes_of(300), frame_priority::essential);
  r.push(bytes_of(300), frame_priority::essential);
  batch.clear();
  REQUIRE(r.take(batch));
  r.release_batch();
  CHECK(r.queued_bytes() == 0);
  r.push(bytes_of(300), frame_priority::essential);
  CHECK(r.queued_bytes() == wire(300));
}

TEST_CASE("control frames bypass the marks, survive close_data, and nothing follows a close") {
  outbound_queue q{{10, 20}};
  CHECK(q.push_control(opcode::ping, bytes_of(100)) == push_result::wake);
  CHECK(q.push(bytes_of(5), frame_priority::essential) == push_result::overflow);
  q.close_data();
  CHECK(q.push(bytes_of(5), frame_priority::essential) == push_result::closed);
  CHECK(q.push_control(opcode::close, bytes_of(2)) == push_result::queued);
  CHECK_FALSE(q.accepting_data());
  CHECK(q.push_control(opcode::pong, bytes_of(1)) == push_result::closed);
  CHECK(q.push_control(opcode::close, bytes_of(2)) == push_result::closed);
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch));
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].header.bytes[0] == 0x89);  // FIN | ping
  CHECK(batch[1].header.bytes[0] == 0x88);  // FIN | close
  q.finish();
  CHECK(q.push_control(opcode::ping, bytes_of(1)) == push_result::closed);
}

TEST_CASE("a client that pings without reading leaves at most one pong waiting") {
  outbound_queue q{{1000, 2000}};
  CHECK(q.push_control(opcode::pong, bytes_of(10)) == push_result::wake);
  std::size_t pushes = 100000;
  for (std::size_t i = 0; i < pushes; ++i)
    CHECK(q.push_control(opcode::pong, make_frame(std::to_string(i))) == push_result::queued);
  CHECK(q.pending_items() == 1);
  auto last = std::to_string(pushes - 1);
  CHECK(q.queued_bytes() == 2 + last.size());
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch));
  REQUIRE(batch.size() == 1);
  CHECK(*batch[0].payload == last);
  // A pong that arrives while the first is being written waits as the next one, again alone.
  CHECK(q.push_control(opcode::pong, bytes_of(3)) == push_result::queued);
  CHECK(q.push_control(opcode::pong, bytes_of(4)) == push_result::queued);
  CHECK(q.pending_items() == 1);
}

TEST_CASE("a pong replaced in place keeps its position among data frames") {
  outbound_queue q{{1000, 2000}};
  q.push(make_frame("a"), frame_priority::essential);
  q.push_control(opcode::pong, make_frame("p1"));
  q.push(make_frame("b"), frame_priority::essential);
  q.push_control(opcode::pong, make_frame("p2"));
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch));
  REQUIRE(batch.size() == 3);
  CHECK(*batch[0].payload == "a");
  CHECK(*batch[1].payload == "p2");
  CHECK(batch[1].header.bytes[0] == 0x8A);  // FIN | pong
  CHECK(*batch[2].payload == "b");
}

TEST_CASE("a batch shares the pushed payload instead of copying it") {
  outbound_queue q{{1000, 2000}};
  auto payload = bytes_of(50);
  q.push(payload, frame_priority::essential);
  q.push(payload, frame_priority::essential);
  std::vector<outbound_item> batch;
  REQUIRE(q.take(batch));
  CHECK(batch[0].payload.get() == payload.get());
  CHECK(batch[1].payload.get() == payload.get());
}

TEST_CASE("frame headers use 7-bit, 16-bit and 64-bit lengths at the RFC 6455 boundaries") {
  auto h0 = make_text_header(0);
  CHECK(h0.size == 2);
  CHECK(h0.bytes[0] == 0x81);
  CHECK(h0.bytes[1] == 0);

  auto h125 = make_text_header(125);
  CHECK(h125.size == 2);
  CHECK(h125.bytes[1] == 125);

  auto h126 = make_text_header(126);
  CHECK(h126.size == 4);
  CHECK(h126.bytes[1] == 126);
  CHECK(h126.bytes[2] == 0);
  CHECK(h126.bytes[3] == 126);

  auto h65535 = make_text_header(65535);
  CHECK(h65535.size == 4);
  CHECK(h65535.bytes[1] == 126);
  CHECK(h65535.bytes[2] == 0xFF);
  CHECK(h65535.bytes[3] == 0xFF);

  auto h65536 = make_text_header(65536);
  CHECK(h65536.size == 10);
  CHECK(h65536.bytes[1] == 127);
  for (int i = 2; i < 7; ++i)
    CHECK(h65536.bytes[i] == 0);
  CHECK(h65536.bytes[7] == 0x01);
  CHECK(h65536.bytes[8] == 0);
  CHECK(h65536.bytes[9] == 0);
  // Server frames are never masked.
  for (auto n : {0, 125, 126, 65535, 65536})
    CHECK((make_text_header(static_cast<std::size_t>(n)).bytes[1] & 0x80) == 0);
}

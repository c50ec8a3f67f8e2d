#pragma once

// The bounded queue between the actors that produce frames for one connection and the single
// writer of its socket. A pure data structure (no I/O, no locking) so that its policy can be
// tested on its own; connection_sink puts a mutex around it.

#include "net/frame_header.hpp"
#include "protocol/frame_sink.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace parley::net {

/// One frame waiting to be written: its header and its payload, shared with every other
/// connection the same payload goes to. A null payload is an empty one.
struct outbound_item {
  frame payload;
  frame_header header;

  /// Bytes this frame takes on the wire.
  std::size_t wire_size() const noexcept {
    return header.size + (payload ? payload->size() : 0);
  }
};

/// What became of one push.
enum class push_result : uint8_t {
  queued,   ///< appended; a flush is already scheduled or a write is running
  wake,     ///< appended; the caller must schedule one flush
  dropped,  ///< a droppable frame past the soft mark: discarded and counted
  overflow, ///< would pass the hard mark: refused; pending data discarded; the caller must close
  closed,   ///< the queue accepts no more frames of this kind
};

/// The two marks of an outbound queue, in wire bytes (header + payload).
struct outbound_limits {
  std::size_t soft_bytes = 256 * 1024;
  std::size_t hard_bytes = 1024 * 1024;
};

/// Bounded FIFO of outbound frames with soft/hard marks and a "flush scheduled" flag.
/// Control frames (ping, pong, close) are never refused for size, but each kind is bounded: at most
/// one pong waits (a newer one replaces it, as RFC 6455 section 5.5.3 allows), so a client that
/// pings without reading cannot grow the queue; nothing follows a close frame.
/// Not synchronized: the owner serializes every call.
class outbound_queue {
public:
  /// Creates an empty, idle queue.
  explicit outbound_queue(outbound_limits limits) : limits_(limits) {}

  /// Appends a text frame unless the marks or the queue state say otherwise.
  push_result push(const frame& payload, frame_priority priority);

  /// Appends a ping, pong or close frame (payload at most 125 bytes). A pong replaces one that has
  /// not been taken yet. Refused after a close frame or finish().
  push_result push_control(opcode op, frame payload);

  /// Moves everything pending into `batch` (expected empty) as the batch being written. Returns
  /// false and goes idle when nothing is pending; the next push then answers `wake` again.
  bool take(std::vector<outbound_item>& batch);

  /// The batch taken last is on the wire (or abandoned): its bytes stop counting.
  void release_batch() noexcept { batch_bytes_ = 0; }

  /// Stops accepting data frames (a close was requested or the peer is gone).
  void close_data() noexcept { data_open_ = false; }

  /// Stops accepting anything and discards what is pending: the connection is over.
  void finish() noexcept;

  /// Wire bytes of frames pending or being written.
  std::size_t queued_bytes() const noexcept { return pending_bytes_ + batch_bytes_; }

  /// Frames waiting for the next write.
  std::size_t pending_items() const noexcept { return pending_.size(); }

  /// Droppable frames discarded past the soft mark so far.
  uint64_t dropped() const noexcept { return dropped_; }

  /// True when a flush is scheduled or a write is running.
  bool busy() const noexcept { return busy_; }

  /// True until close_data(), a close frame, finish() or an overflow.
  bool accepting_data() const noexcept { return data_open_ && !close_queued_ && !finished_; }

  /// Gives back memory kept from a burst once the queue is idle and empty.
  void shrink() noexcept;

private:
  push_result append(outbound_item&& item);

  static constexpr std::size_t no_pong = static_cast<std::size_t>(-1);

  outbound_limits limits_;
  std::vector<outbound_item> pending_;
  std::size_t pending_bytes_ = 0;
  std::size_t batch_bytes_ = 0;
  std::size_t pending_pong_ = no_pong;  ///< index in pending_ of the pong not yet taken
  uint64_t dropped_ = 0;
  bool busy_ = false;
  bool data_open_ = true;
  bool close_queued_ = false;
  bool finished_ = false;
};

} // namespace parley::net

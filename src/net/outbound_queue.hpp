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

/// One entry of an outbound queue: a shared text payload plus its inline header, or a control item
/// holding bytes that Beast itself wrote (handshake response, pong, ping, close), already framed.
struct outbound_item {
  frame payload;
  frame_header header; ///< size 0 for control items
  bool control = false;
};

/// What became of one push.
enum class push_result : uint8_t {
  queued,   ///< appended; a flush is already scheduled or a write is running
  wake,     ///< appended; the caller must schedule one flush
  dropped,  ///< a droppable frame past the soft mark: discarded and counted
  overflow, ///< would pass the hard mark: refused; pending data discarded; the caller must close
  closed,   ///< the queue accepts no more data frames
};

/// The two marks of an outbound queue, in wire bytes (header + payload) of data frames.
struct outbound_limits {
  std::size_t soft_bytes = 256 * 1024;
  std::size_t hard_bytes = 1024 * 1024;
};

/// Bounded FIFO of outbound frames with soft/hard marks and a "flush scheduled" flag.
/// Not synchronized: the owner serializes every call.
class outbound_queue {
public:
  /// Creates an empty, idle queue.
  explicit outbound_queue(outbound_limits limits) : limits_(limits) {}

  /// Appends a data frame unless the marks or the queue state say otherwise.
  push_result push(const frame& payload, frame_priority priority);

  /// Appends bytes Beast wrote. Control items are never dropped and do not count against the
  /// marks; they are still accepted after close_data(), but not after finish().
  push_result push_control(frame bytes);

  /// Moves everything pending into `batch` (expected empty) as the batch being written. Returns
  /// false and goes idle when nothing is pending; the next push then answers `wake` again.
  bool take(std::vector<outbound_item>& batch);

  /// The batch taken last has been written or abandoned: its bytes stop counting.
  void release_batch() noexcept;

  /// Stops accepting data frames (a close was requested or the peer is gone).
  void close_data() noexcept { data_open_ = false; }

  /// Stops accepting anything and discards what is pending: the connection is over.
  void finish() noexcept;

  /// Wire bytes of data frames pending or being written.
  std::size_t queued_bytes() const noexcept { return pending_bytes_ + batch_bytes_; }

  /// Items (data and control) waiting for the next write.
  std::size_t pending_items() const noexcept { return pending_.size(); }

  /// Droppable frames discarded past the soft mark so far.
  uint64_t dropped() const noexcept { return dropped_; }

  /// True when a flush is scheduled or a write is running.
  bool busy() const noexcept { return busy_; }

  /// True until close_data(), finish() or an overflow.
  bool accepting_data() const noexcept { return data_open_ && !finished_; }

  /// Gives back memory kept from a burst once the queue is idle and empty.
  void shrink() noexcept;

private:
  push_result append(outbound_item&& item);

  outbound_limits limits_;
  std::vector<outbound_item> pending_;
  std::size_t pending_bytes_ = 0;
  std::size_t batch_bytes_ = 0;
  uint64_t dropped_ = 0;
  bool busy_ = false;
  bool data_open_ = true;
  bool finished_ = false;
};

} // namespace parley::net

#pragma once

// The frame_sink of one WebSocket connection, as the actors hold it: a mutex around the
// connection's outbound_queue plus a weak link to the connection. It owns no I/O object, so actors
// may keep it after the socket (and even the io_context) is gone; pushes then just drop.

#include "net/outbound_queue.hpp"
#include "protocol/frame_sink.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace parley::net {

class websocket_session;

/// The thread-safe outbound side of one connection; see frame_sink.
class connection_sink final : public frame_sink {
public:
  /// Creates a sink not yet attached to a connection (pushes queue up until attach).
  explicit connection_sink(outbound_limits limits) : queue_(limits) {}

  // -- frame_sink: any thread -----------------------------------------------------------------------

  bool push(const frame& payload, frame_priority priority) override;
  void close(uint16_t code, std::string_view reason) override;

  // -- the connection's side: its strand (attach/detach: wherever the connection lives) -----------

  /// Links the sink to the connection that writes its frames.
  void attach(std::weak_ptr<websocket_session> owner);

  /// Queues bytes Beast wrote; true when the caller must schedule a flush.
  bool push_control(frame bytes);

  /// See outbound_queue::take.
  bool take(std::vector<outbound_item>& batch);

  /// See outbound_queue::release_batch.
  void release_batch();

  /// True while a flush is scheduled or a write is running.
  bool busy() const;

  /// Data frames pushed from now on are dropped (the connection is closing or closed).
  void close_data();

  /// The connection is over: drop what is queued and accept nothing more.
  void finish();

  /// Like finish, and forgets the connection, so that no push can reach it any more.
  void detach();

  /// Wire bytes of data frames queued or being written.
  std::size_t queued_bytes() const;

  /// Droppable frames dropped past the soft mark.
  uint64_t dropped() const;

  /// False once the connection is closing (close(), overflow) or gone.
  bool accepting_data() const;

private:
  mutable std::mutex mutex_;
  outbound_queue queue_;
  std::weak_ptr<websocket_session> owner_;
};

using connection_sink_ptr = std::shared_ptr<connection_sink>;

} // namespace parley::net

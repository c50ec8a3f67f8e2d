#pragma once

// The frame_sink of one WebSocket connection, as the actors hold it: a mutex around the
// connection's outbound_queue, a weak link to the connection and its loop's wake list. It owns no
// I/O object, so actors may keep it after the socket (and even the loop) is gone; pushes then drop.

#include "net/outbound_queue.hpp"
#include "protocol/frame_sink.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace parley::net {

class loop_connection;
class wake_list;

/// The payload of a close frame: the code in network byte order and the reason, cut to the 123
/// bytes RFC 6455 allows.
frame make_close_payload(uint16_t code, std::string_view reason);

/// The thread-safe outbound side of one connection; see frame_sink.
class connection_sink final : public frame_sink {
public:
  /// Creates a sink whose wake-ups go to `wakes` once attached to a connection.
  connection_sink(outbound_limits limits, std::shared_ptr<wake_list> wakes)
    : queue_(limits), wakes_(std::move(wakes)) {}

  // -- frame_sink: any thread -----------------------------------------------------------------------

  bool push(const frame& payload, frame_priority priority) override;
  void close(uint16_t code, std::string_view reason) override;
  void inbound_taken() override;
  std::string client_address() const override { return client_address_; }

  /// Inbound frames sent to the session actor and not yet taken, past which the connection stops
  /// reading; it reads again once the actor is down to half of it. This bounds what one client can
  /// make the server hold, whatever it sends (a decoded frame is at most a few KiB).
  static constexpr uint32_t inbound_limit = 64;

  // -- the connection's side: its loop thread ------------------------------------------------------

  /// Counts one frame sent to the session actor. False when the actor is now too far behind: the
  /// connection must stop reading until the sink wakes it (flush) with inbound_paused() false.
  bool count_inbound();

  /// True from a count_inbound() that returned false until the actor has caught up.
  bool inbound_paused() const;

  /// Names the client for the admin API; called once, before the session actor is spawned.
  void set_client_address(std::string address) { client_address_ = std::move(address); }

  /// Links the sink to the connection that writes its frames.
  void attach(std::weak_ptr<loop_connection> owner);

  /// Queues a ping, pong or close frame; true when the caller must flush (nothing else will).
  bool push_control(opcode op, frame payload);

  /// See outbound_queue::take; an idle queue also gives back burst memory.
  bool take(std::vector<outbound_item>& batch);

  /// See outbound_queue::release_batch.
  void release_batch();

  /// The connection is over: drop what is queued and accept nothing more.
  void finish();

  /// Wire bytes queued or being written.
  std::size_t queued_bytes() const;

  /// Droppable frames dropped past the soft mark.
  uint64_t dropped() const;

  /// False once the connection is closing (close(), overflow) or gone.
  bool accepting_data() const;

  /// The code of the first close frame queued through close() (or for a slow consumer); 0: none.
  uint16_t close_code() const;

private:
  /// Queues a close frame and wakes the writer if needed; the mutex is held.
  void close_locked(uint16_t code, std::string_view reason);

  mutable std::mutex mutex_;
  outbound_queue queue_;
  std::weak_ptr<loop_connection> owner_;
  std::shared_ptr<wake_list> wakes_;
  uint32_t inbound_pending_ = 0;
  bool inbound_paused_ = false;
  uint16_t close_code_ = 0;
  std::string client_address_;  ///< written once before the session starts, then only read
};

using connection_sink_ptr = std::shared_ptr<connection_sink>;

} // namespace parley::net

#pragma once

// One I/O thread and everything its connections share. Each loop runs its own io_context on one
// thread, so a connection's handlers never run concurrently and need no strand. The loop also
// holds what would otherwise cost memory or a system call per connection:
//
// - the wake list: producers (actors) mark connections ready to write; the loop flushes all of them
//   in one pass, so a fan-out to a thousand members costs one post, not a thousand, and every frame
//   pushed before that pass leaves in the same write (corking);
// - one read buffer and one write buffer for all its connections (an idle connection keeps neither);
// - one coarse timer that checks every connection's deadlines (keep-alive ping, idle timeout, stuck
//   write, unanswered close) instead of a timer per connection.

#include "net/drain_schedule.hpp"
#include "net/loop_connection.hpp"
#include "net/outbound_queue.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace parley::net {

/// Connections of one loop that have frames to write. Shared with every sink of the loop, so that
/// an actor may still push after the server stopped: once closed, wake-ups are dropped.
class wake_list : public std::enable_shared_from_this<wake_list> {
public:
  explicit wake_list(boost::asio::io_context& ctx) : ctx_(&ctx) {}

  /// Marks a connection ready to write (any thread). The first mark after a pass posts one pass.
  void wake(std::weak_ptr<loop_connection> conn);

  /// Drops every later wake-up (the loop is stopping).
  void close();

private:
  void run_pass();

  std::mutex mutex_;
  std::vector<std::weak_ptr<loop_connection>> woken_;
  std::vector<std::weak_ptr<loop_connection>> passing_;  // the loop thread's copy
  boost::asio::io_context* ctx_;                           // null once closed
  bool pass_posted_ = false;
};

/// Time limits the sweep enforces.
struct loop_deadlines {
  std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(60);
  std::chrono::steady_clock::duration write_timeout = std::chrono::seconds(10);
};

/// One I/O thread with its connections.
class io_loop {
public:
  /// What a connection needs while it writes one batch, shared by the loop's connections because
  /// only one of them writes at a time.
  struct write_scratch_type {
    std::vector<outbound_item> batch;               ///< the frames taken from the sink
    std::string bytes;                              ///< small frames copied back to back
    std::vector<boost::asio::const_buffer> gather;  ///< what one system call writes
  };

  explicit io_loop(loop_deadlines deadlines);
  ~io_loop();

  io_loop(const io_loop&) = delete;
  io_loop& operator=(const io_loop&) = delete;

  boost::asio::io_context& context() noexcept { return ctx_; }
  const std::shared_ptr<wake_list>& wakes() const noexcept { return wakes_; }
  const loop_deadlines& deadlines() const noexcept { return deadlines_; }

  /// The loop's read buffer: a connection reads into it and keeps only an incomplete frame.
  std::vector<char>& read_buffer() noexcept { return read_buffer_; }

  /// The loop's write buffers (see write_scratch_type).
  write_scratch_type& write_scratch() noexcept { return write_scratch_; }

  /// Registers a connection for the sweep and for shutdown (loop thread).
  void add(loop_connection* conn);

  /// Forgets a connection (loop thread, from its destructor).
  void remove(loop_connection* conn);

  /// Connections registered now (any thread).
  std::size_t connections() const noexcept { return count_.load(std::memory_order_relaxed); }

  /// Starts the thread.
  void start();

  /// Asks every connection to close with this code (any thread).
  void close_all(uint16_t code, std::string reason);

  /// Closes the connections open now with 1001, spread over `period` (drain_schedule), each close
  /// hinting a reconnect delay; whatever is still open at the end of the period is closed then
  /// (any thread). `seed` seeds the hints' randomness.
  void drain(std::chrono::steady_clock::duration period, uint32_t seed);

  /// Stops the thread and drops later wake-ups; pending handlers are destroyed with the loop.
  void stop();

private:
  void arm_sweep();
  void sweep();
  void drain_step();

  loop_deadlines deadlines_;
  std::vector<loop_connection*> conns_;  // declared before ctx_: outlives the handlers
  std::atomic<std::size_t> count_{0};
  std::vector<char> read_buffer_;
  write_scratch_type write_scratch_;
  boost::asio::io_context ctx_{1};
  std::shared_ptr<wake_list> wakes_;
  boost::asio::steady_timer sweep_timer_;
  std::chrono::steady_clock::duration sweep_interval_;
  // A drain under way (loop thread only).
  std::optional<drain_schedule> drain_;
  std::chrono::steady_clock::time_point drain_start_;
  std::size_t drain_closed_ = 0;
  boost::asio::steady_timer drain_timer_;
  std::minstd_rand drain_random_;
  std::thread thread_;
};

} // namespace parley::net

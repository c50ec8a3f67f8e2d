#include "net/io_loop.hpp"

#include "protocol/frame_sink.hpp"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace parley::net {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t read_buffer_bytes = 64 * 1024;

/// Often enough to hold every deadline to within a quarter of itself, at most once a second.
clock_type::duration sweep_interval_for(const loop_deadlines& d) {
  auto quarter = std::min(d.idle_timeout, d.write_timeout) / 4;
  return std::clamp<clock_type::duration>(quarter, std::chrono::milliseconds(10),
                                          std::chrono::seconds(1));
}

} // namespace

// -- wake_list --------------------------------------------------------------------------------------

void wake_list::wake(std::weak_ptr<loop_connection> conn) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (!ctx_)
    return;
  woken_.push_back(std::move(conn));
  if (pass_posted_)
    return;
  pass_posted_ = true;
  asio::post(*ctx_, [self = shared_from_this()] { self->run_pass(); });
}

void wake_list::close() {
  std::lock_guard<std::mutex> guard{mutex_};
  ctx_ = nullptr;
  woken_.clear();
}

void wake_list::run_pass() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    pass_posted_ = false;
    passing_.swap(woken_);
  }
  // Locking here, on the loop thread, keeps the last reference to a connection (and so its
  // destructor) off the actors' threads.
  for (auto& weak : passing_)
    if (auto conn = weak.lock())
      conn->flush();
  passing_.clear();
}

// -- io_loop ----------------------------------------------------------------------------------------

io_loop::io_loop(loop_deadlines deadlines)
  : deadlines_(deadlines),
    read_buffer_(read_buffer_bytes),
    wakes_(std::make_shared<wake_list>(ctx_)),
    sweep_timer_(ctx_),
    sweep_interval_(sweep_interval_for(deadlines)),
    drain_timer_(ctx_) {
  // nop
}

io_loop::~io_loop() {
  stop();
}

void io_loop::add(loop_connection* conn) {
  conn->loop_slot = conns_.size();
  conns_.push_back(conn);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void io_loop::remove(loop_connection* conn) {
  auto slot = conn->loop_slot;
  if (slot >= conns_.size() || conns_[slot] != conn)
    return;
  conns_[slot] = conns_.back();
  conns_[slot]->loop_slot = slot;
  conns_.pop_back();
  count_.fetch_sub(1, std::memory_order_relaxed);
}

void io_loop::start() {
  arm_sweep();
  thread_ = std::thread{[this] { ctx_.run(); }};
}

void io_loop::close_all(uint16_t code, std::string reason) {
  asio::post(ctx_, [this, code, reason = std::move(reason)] {
    for (auto* conn : conns_)
      conn->close(code, reason);
  });
}

void io_loop::drain(clock_type::duration period, uint32_t seed) {
  asio::post(ctx_, [this, period, seed] {
    if (drain_)
      return;  // one drain at a time; the first one's pace holds
    drain_random_.seed(seed);
    drain_.emplace(conns_.size(), period);
    drain_start_ = clock_type::now();
    drain_closed_ = 0;
    drain_step();
  });
}

void io_loop::drain_step() {
  auto elapsed = clock_type::now() - drain_start_;
  auto due = drain_->due(elapsed);
  bool over = drain_->over(elapsed);
  std::uniform_real_distribution<double> uniform{0.0, 1.0};
  // close() only queues a close frame (the connection ends later, on this thread), so conns_
  // does not change during the walk. Once over, late arrivals are closed too.
  for (auto* conn : conns_) {
    if (!over && drain_closed_ >= due)
      break;
    if (conn->closing())
      continue;
    conn->close(close_code::going_away, drain_close_reason(drain_->reconnect_delay(uniform(drain_random_))));
    ++drain_closed_;
  }
  if (over)
    return;
  drain_timer_.expires_after(drain_->step());
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec)
      drain_step();
  });
}

void io_loop::stop() {
  wakes_->close();
  ctx_.stop();
  if (thread_.joinable())
    thread_.join();
  // A released connection may end at once and leave the list: walk a copy.
  auto left = conns_;
  for (auto* conn : left)
    conn->release();
}

void io_loop::arm_sweep() {
  sweep_timer_.expires_after(sweep_interval_);
  sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec)
      return;
    sweep();
    arm_sweep();
  });
}

void io_loop::sweep() {
  // check_deadlines never ends a connection synchronously (closing only cancels its operations),
  // so the list cannot change under this loop.
  auto now = clock_type::now();
  for (auto* conn : conns_)
    conn->check_deadlines(now);
}

} // namespace parley::net

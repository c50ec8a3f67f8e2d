#include "net/connection_sink.hpp"

#include "metrics/server_metrics.hpp"
#include "net/io_loop.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

namespace parley::net {

namespace {

constexpr std::size_t max_close_reason = 123;

} // namespace

frame make_close_payload(uint16_t code, std::string_view reason) {
  std::string body;
  body.reserve(2 + std::min(reason.size(), max_close_reason));
  body += static_cast<char>(code >> 8);
  body += static_cast<char>(code & 0xFF);
  body.append(reason.substr(0, max_close_reason));
  return make_frame(std::move(body));
}

// Wake-ups go through the loop's wake list, which takes a weak reference: an actor thread never
// holds the last reference to a connection, so a connection's destructor always runs on its loop.

bool connection_sink::push(const frame& payload, frame_priority priority) {
  std::lock_guard<std::mutex> guard{mutex_};
  switch (queue_.push(payload, priority)) {
    case push_result::wake:
      wakes_->wake(owner_);
      return true;
    case push_result::queued:
      return true;
    case push_result::overflow:
      metrics::server_metrics().slow_consumer_closes.inc();
      spdlog::info("connection closed a slow consumer ({} frames dropped before)", queue_.dropped());
      close_locked(close_code::slow_consumer, "slow consumer, reconnect");
      return false;
    case push_result::dropped:
      if (payload)
        metrics::server_metrics().frame_dropped(payload->kind);
      return false;
    case push_result::closed:
      return false;
  }
  return false;
}

void connection_sink::close(uint16_t code, std::string_view reason) {
  std::lock_guard<std::mutex> guard{mutex_};
  close_locked(code, reason);
}

void connection_sink::close_locked(uint16_t code, std::string_view reason) {
  if (close_code_ == 0)
    close_code_ = code;
  if (queue_.push_control(opcode::close, make_close_payload(code, reason)) == push_result::wake)
    wakes_->wake(owner_);
}

uint16_t connection_sink::close_code() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return close_code_;
}

void connection_sink::inbound_taken() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (inbound_pending_ > 0)
    --inbound_pending_;
  if (inbound_paused_ && inbound_pending_ <= inbound_limit / 2) {
    inbound_paused_ = false;
    wakes_->wake(owner_);
  }
}

bool connection_sink::count_inbound() {
  std::lock_guard<std::mutex> guard{mutex_};
  if (++inbound_pending_ < inbound_limit)
    return true;
  inbound_paused_ = true;
  return false;
}

bool connection_sink::inbound_paused() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return inbound_paused_;
}

void connection_sink::attach(std::weak_ptr<loop_connection> owner) {
  std::lock_guard<std::mutex> guard{mutex_};
  owner_ = std::move(owner);
}

bool connection_sink::push_control(opcode op, frame payload) {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.push_control(op, std::move(payload)) == push_result::wake;
}

bool connection_sink::take(std::vector<outbound_item>& batch) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (queue_.take(batch))
    return true;
  queue_.shrink();
  return false;
}

void connection_sink::release_batch() {
  std::lock_guard<std::mutex> guard{mutex_};
  queue_.release_batch();
}

void connection_sink::finish() {
  std::lock_guard<std::mutex> guard{mutex_};
  queue_.finish();
  queue_.release_batch();
}

std::size_t connection_sink::queued_bytes() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.queued_bytes();
}

uint64_t connection_sink::dropped() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.dropped();
}

bool connection_sink::accepting_data() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.accepting_data();
}

} // namespace parley::net

#include "net/outbound_queue.hpp"

#include <algorithm>
#include <iterator>

namespace parley::net {

namespace {


bool is_data(const outbound_item& item) {
  return (item.header.bytes[0] & 0x0F) == static_cast<uint8_t>(opcode::text);
}

} // namespace

push_result outbound_queue::push(const frame& payload, frame_priority priority) {
  if (!payload)
    return push_result::dropped;
  if (!accepting_data())
    return push_result::closed;
  outbound_item item{payload, make_text_header(payload->size())};
  auto after = queued_bytes() + item.wire_size();
  if (after > limits_.hard_bytes) {
    // Whatever is not yet on its way to the socket goes, except control frames (a pong or a close
    // already promised), so that no frame is ever cut.
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(), is_data), pending_.end());
    pending_bytes_ = 0;
    pending_pong_ = no_pong;
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      pending_bytes_ += pending_[i].wire_size();
      if (pending_[i].header.bytes[0] == (0x80 | static_cast<uint8_t>(opcode::pong)))
        pending_pong_ = i;
    }
    data_open_ = false;
    return push_result::overflow;
  }
  if (priority == frame_priority::droppable && after > limits_.soft_bytes) {
    ++dropped_;
    return push_result::dropped;
  }
  return append(std::move(item));
}

push_result outbound_queue::push_control(opcode op, frame payload) {
  if (finished_ || close_queued_)
    return push_result::closed;
  outbound_item item{std::move(payload), {}};
  item.header = make_header(op, item.payload ? item.payload->size() : 0);
  if (op == opcode::pong && pending_pong_ != no_pong) {
    auto& waiting = pending_[pending_pong_];
    pending_bytes_ = pending_bytes_ - waiting.wire_size() + item.wire_size();
    waiting = std::move(item);
    return push_result::queued;  // a pong was pending, so a flush is already on its way
  }
  if (op == opcode::pong)
    pending_pong_ = pending_.size();
  if (op == opcode::close)
    close_queued_ = true;
  return append(std::move(item));
}

push_result outbound_queue::append(outbound_item&& item) {
  pending_bytes_ += item.wire_size();
  pending_.push_back(std::move(item));
  if (busy_)
    return push_result::queued;
  busy_ = true;
  return push_result::wake;
}

bool outbound_queue::take(std::vector<outbound_item>& batch) {
  if (pending_.empty()) {
    busy_ = false;
    return false;
  }
  // Moved, not swapped: a swap would leave this queue holding the capacity of the writer's batch
  // vector, so every idle connection would keep the largest burst of its loop.
  batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
               std::make_move_iterator(pending_.end()));
  pending_.clear();
  batch_bytes_ += pending_bytes_;
  pending_bytes_ = 0;
  pending_pong_ = no_pong;
  return true;
}

void outbound_queue::finish() noexcept {
  finished_ = true;
  data_open_ = false;
  pending_.clear();
  pending_bytes_ = 0;
  pending_pong_ = no_pong;
  shrink();
}

void outbound_queue::shrink() noexcept {
  // Idle connections vastly outnumber busy ones: an idle queue keeps no vector at all.
  if (pending_.empty() && pending_.capacity() > 0)
    std::vector<outbound_item>{}.swap(pending_);
}

} // namespace parley::net

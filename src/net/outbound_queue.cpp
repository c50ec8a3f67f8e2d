#include "net/outbound_queue.hpp"

#include <algorithm>

namespace parley::net {

namespace {

// A burst of this many items may keep its vector; beyond it an idle queue gives the memory back,
// because idle connections vastly outnumber busy ones.
constexpr std::size_t kept_capacity = 64;

} // namespace

push_result outbound_queue::push(const frame& payload, frame_priority priority) {
  if (!payload)
    return push_result::dropped;
  if (!accepting_data())
    return push_result::closed;
  auto header = make_text_header(payload->size());
  auto wire = payload->size() + header.size;
  auto after = queued_bytes() + wire;
  if (after > limits_.hard_bytes) {
    // Whatever is not yet on its way to the socket goes; only control items (a pong or the
    // handshake response already promised to Beast) stay, so that frames are never cut.
    pending_.erase(std::remove_if(pending_.begin(), pending_.end(),
                                  [](const outbound_item& i) { return !i.control; }),
                   pending_.end());
    pending_bytes_ = 0;
    data_open_ = false;
    return push_result::overflow;
  }
  if (priority == frame_priority::droppable && after > limits_.soft_bytes) {
    ++dropped_;
    return push_result::dropped;
  }
  pending_bytes_ += wire;
  return append(outbound_item{payload, header, false});
}

push_result outbound_queue::push_control(frame bytes) {
  if (finished_)
    return push_result::closed;
  return append(outbound_item{std::move(bytes), frame_header{}, true});
}

push_result outbound_queue::append(outbound_item&& item) {
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
  batch.swap(pending_);
  pending_.clear();
  batch_bytes_ += pending_bytes_;
  pending_bytes_ = 0;
  return true;
}

void outbound_queue::release_batch() noexcept {
  batch_bytes_ = 0;
}

void outbound_queue::finish() noexcept {
  finished_ = true;
  data_open_ = false;
  pending_.clear();
  pending_bytes_ = 0;
  shrink();
}

void outbound_queue::shrink() noexcept {
  if (pending_.empty() && pending_.capacity() > kept_capacity)
    std::vector<outbound_item>{}.swap(pending_);
}

} // namespace parley::net

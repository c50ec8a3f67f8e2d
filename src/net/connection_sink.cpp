#include "net/connection_sink.hpp"

#include "net/websocket_session.hpp"

namespace parley::net {

// The wake-ups below are posted while the mutex is held, and the strong reference is moved into
// the posted handler. Two reasons: detach() (taken under the same mutex) then guarantees that no
// push touches the connection after the server tore it down, and the calling actor thread never
// ends up holding the last reference (which would run the connection's destructor, and with it
// detach(), on this thread while we still hold the lock).

bool connection_sink::push(const frame& payload, frame_priority priority) {
  std::shared_ptr<websocket_session> owner;
  std::lock_guard<std::mutex> guard{mutex_};
  switch (queue_.push(payload, priority)) {
    case push_result::wake:
      if ((owner = owner_.lock()))
        websocket_session::schedule_flush(std::move(owner));
      return true;
    case push_result::overflow:
      if ((owner = owner_.lock()))
        websocket_session::schedule_close(std::move(owner), close_code::slow_consumer,
                                          "slow consumer, reconnect");
      return false;
    case push_result::queued:
      return true;
    case push_result::dropped:
    case push_result::closed:
      return false;
  }
  return false;
}

void connection_sink::close(uint16_t code, std::string_view reason) {
  std::shared_ptr<websocket_session> owner;
  std::lock_guard<std::mutex> guard{mutex_};
  if (!queue_.accepting_data())
    return; // already closing, or gone
  queue_.close_data();
  if ((owner = owner_.lock()))
    websocket_session::schedule_close(std::move(owner), code, std::string{reason});
}

void connection_sink::attach(std::weak_ptr<websocket_session> owner) {
  std::lock_guard<std::mutex> guard{mutex_};
  owner_ = std::move(owner);
}

bool connection_sink::push_control(frame bytes) {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.push_control(std::move(bytes)) == push_result::wake;
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

bool connection_sink::busy() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return queue_.busy();
}

void connection_sink::close_data() {
  std::lock_guard<std::mutex> guard{mutex_};
  queue_.close_data();
}

void connection_sink::finish() {
  std::lock_guard<std::mutex> guard{mutex_};
  queue_.finish();
}

void connection_sink::detach() {
  std::lock_guard<std::mutex> guard{mutex_};
  queue_.finish();
  owner_.reset();
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

#include "net/session_registry.hpp"

namespace parley::net {

uint64_t session_registry::add(std::weak_ptr<websocket_session> session) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto id = next_id_++;
  sessions_.emplace(id, std::move(session));
  return id;
}

void session_registry::remove(uint64_t id) {
  std::lock_guard<std::mutex> guard{mutex_};
  sessions_.erase(id);
}

std::size_t session_registry::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return sessions_.size();
}

std::vector<std::shared_ptr<websocket_session>> session_registry::snapshot() const {
  std::vector<std::shared_ptr<websocket_session>> result;
  std::lock_guard<std::mutex> guard{mutex_};
  result.reserve(sessions_.size());
  for (auto& [id, weak] : sessions_)
    if (auto strong = weak.lock())
      result.push_back(std::move(strong));
  return result;
}

} // namespace parley::net

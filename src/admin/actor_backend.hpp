#pragma once

// The admin backend on the real actors. Each call spawns a short-lived requester actor that asks
// the directory, a room, the presence tracker or the store (with a timeout), hands the answer to
// the callback and ends: the admin listener's thread never waits for an actor.

#include "admin/admin_backend.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

namespace parley::admin {

class actor_backend final : public admin_backend {
public:
  /// `timeout` bounds every call; gathers (rooms, a user's sessions) give each part half of it.
  actor_backend(caf::actor_system& sys, caf::timespan timeout);

  void list_rooms(backend_reply<std::vector<room_summary>> done) override;
  void room_members(const std::string& room,
                    backend_reply<std::vector<room_member_summary>> done) override;
  void user_sessions(const std::string& user, backend_reply<user_report> done) override;
  void moderate(moderation_record record, backend_reply<done_t> done) override;
  void notice(const std::string& room, const std::string& text, backend_reply<uint64_t> done) override;
  void health(std::function<void(actor_health)> done) override;

private:
  caf::actor_system& sys_;
  caf::timespan timeout_;
};

} // namespace parley::admin

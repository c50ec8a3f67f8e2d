#pragma once

// A doctest fixture around CAF's deterministic test coordinator (CAF's own dsl.hpp is tied to its
// test runner): actors run only when the test says so, and timers fire only on advance_time.

#include "actors/actors.hpp"
#include "actors/store.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <string>
#include <vector>

namespace parley::testing {

inline caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

/// A frame sink that records what actors push, as parsed JSON. It can play a connection that has
/// fallen behind: while `refuse_droppable` is on, droppable frames are refused (push answers false)
/// and not recorded, as past the soft mark of a real outbound queue.
class recording_sink : public frame_sink {
public:
  bool push(const frame& payload, frame_priority priority) override {
    std::lock_guard<std::mutex> guard{mtx_};
    if (refuse_droppable_ && priority == frame_priority::droppable) {
      ++refused_;
      return false;
    }
    frames_.push_back(nlohmann::json::parse(*payload));
    priorities_.push_back(priority);
    buffers_.push_back(payload);
    return true;
  }

  void close(uint16_t code, std::string_view) override {
    std::lock_guard<std::mutex> guard{mtx_};
    close_code_ = code;
  }

  void inbound_taken() override {
    std::lock_guard<std::mutex> guard{mtx_};
    ++inbound_taken_;
  }

  /// How often the session said it took an inbound frame.
  std::size_t inbound_taken_count() {
    std::lock_guard<std::mutex> guard{mtx_};
    return inbound_taken_;
  }

  /// Takes every frame recorded so far.
  std::vector<nlohmann::json> take() {
    std::lock_guard<std::mutex> guard{mtx_};
    priorities_.clear();
    buffers_.clear();
    return std::exchange(frames_, {});
  }

  /// Takes the frames of one type, dropping the others.
  std::vector<nlohmann::json> take(const std::string& type) {
    std::vector<nlohmann::json> out;
    for (auto& f : take())
      if (f["type"] == type)
        out.push_back(std::move(f));
    return out;
  }

  std::vector<frame_priority> priorities() {
    std::lock_guard<std::mutex> guard{mtx_};
    return priorities_;
  }

  /// The buffers recorded since the last take(), as pushed (to check that a broadcast is shared).
  std::vector<frame> buffers() {
    std::lock_guard<std::mutex> guard{mtx_};
    return buffers_;
  }

  /// How many frames were recorded since the last take().
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mtx_};
    return frames_.size();
  }

  /// Refuses droppable frames from now on (true) or accepts them again (false).
  void refuse_droppable(bool on) {
    std::lock_guard<std::mutex> guard{mtx_};
    refuse_droppable_ = on;
  }

  /// How many droppable frames were refused so far.
  std::size_t refused() {
    std::lock_guard<std::mutex> guard{mtx_};
    return refused_;
  }

  uint16_t close_code() {
    std::lock_guard<std::mutex> guard{mtx_};
    return close_code_;
  }

private:
  std::mutex mtx_;
  std::vector<nlohmann::json> frames_;
  std::vector<frame_priority> priorities_;
  std::vector<frame> buffers_;
  bool refuse_droppable_ = false;
  std::size_t refused_ = 0;
  uint16_t close_code_ = 0;
  std::size_t inbound_taken_ = 0;
};

/// What a fake session actor received from rooms.
struct session_log {
  std::vector<std::string> moved;
  std::vector<std::string> closed;
  std::vector<room_actor> moved_to;
  std::vector<std::pair<std::string, std::string>> kicked;  ///< (room, reason) per kicked_atom
  std::string session_id;  ///< what it answers an info request with
};

/// A stand-in for a session actor: rooms only send it moved, closed and kicked notices.
inline session_actor::behavior_type fake_session(session_actor::pointer,
                                                 std::shared_ptr<session_log> log) {
  return {
    [](inbound_atom, protocol::inbound&) {},
    [](disconnect_atom) {},
    [log](moved_atom, const std::string& name, room_actor& room) {
      log->moved.push_back(name);
      log->moved_to.push_back(room);
    },
    [log](closed_atom, const std::string& name) { log->closed.push_back(name); },
    [log](kicked_atom, const std::string& name, const std::string& reason) {
      log->kicked.emplace_back(name, reason);
    },
    // Server-wide bans and sign-in deadlines do not concern the tests that use this stand-in.
    [](banned_atom, const moderation_record&) {},
    [log](get_atom, info_atom) {
      session_info info;
      info.session = log->session_id;
      return info;
    },
    [](deadline_atom, uint64_t) {},
    [](reauth_atom, uint64_t) {},
  };
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;
  std::vector<caf::actor> spawned;

  fixture()
    : sys(testing_config(cfg)),
      self(sys, true),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // Rooms and trackers live until told otherwise; a test ends without stopping each one.
    sys.await_actors_before_shutdown(false);
  }

  ~fixture() {
    // Actors hold each other (and the memories) alive; end them so nothing leaks past the test.
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    sched.run();
  }

  /// Spawns an actor that the fixture ends when the test is over.
  template <class... Ts>
  auto spawn(Ts&&... xs) {
    auto handle = sys.spawn(std::forward<Ts>(xs)...);
    spawned.push_back(caf::actor_cast<caf::actor>(handle));
    return handle;
  }

  /// Spawns a message store on an in-memory database (or `path`), registered as "store".
  store_actor spawn_store(const std::string& path = ":memory:",
                          std::size_t max_rooms = default_max_rooms) {
    store_settings cfg;
    cfg.path = path;
    cfg.max_rooms = max_rooms;
    cfg.commit_window = caf::timespan{0};
    auto handle = spawn(store, cfg);
    run();
    return handle;
  }

  /// Runs every actor until nothing is left to do.
  void run() { sched.run(); }

  /// Moves virtual time forward, firing due timers, and runs what they triggered.
  void advance(caf::timespan d) {
    sched.advance_time(d);
    sched.run();
  }

  /// Sends a request, runs everything, and returns the reply (fails the test on an error).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& dest, Ts&&... xs) {
    T result{};
    bool got = false;
    auto h = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    h.receive([&](T& x) { result = std::move(x); got = true; },
              [&](caf::error& err) { FAIL("unexpected error: " << sys.render(err)); });
    CHECK(got);
    return result;
  }

  /// Sends a request that must fail, runs everything, and returns the error.
  template <class T, class Handle, class... Ts>
  caf::error ask_error(const Handle& dest, Ts&&... xs) {
    caf::error result;
    auto h = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    h.receive([&](T&) { FAIL("expected an error"); },
              [&](caf::error& err) { result = std::move(err); });
    return result;
  }
};

} // namespace parley::testing

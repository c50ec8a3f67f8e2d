#pragma once

// The store actor's test fixture: a store over a real SQLite file in a temporary directory, with
// helpers that ask it and that read the file through a second connection, as another process would.

#include "actor_fixture.hpp"

#include "actors/errors.hpp"
#include "actors/store.hpp"
#include "storage/message_db.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace parley::testing {

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct temp_dir {
  std::filesystem::path path;

  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "parley-store-XXXXXX").string();
    path = mkdtemp(pattern.data());
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// A store on a file of its own; `start()` spawns it with `cfg`, `restart()` kills and respawns it.
struct store_fixture : fixture {
  temp_dir dir;
  store_settings cfg;
  store_actor st;

  store_fixture() {
    cfg.path = (dir.path / "parley.db").string();
    cfg.commit_window = std::chrono::seconds{0};
    cfg.busy_timeout = std::chrono::milliseconds{50};
    cfg.retain_per_room = 0;
  }

  void start() {
    st = spawn(store, cfg);
    run();
  }

  void restart() {
    caf::anon_send_exit(st, caf::exit_reason::kill);
    run();
    start();
  }

  static protocol::chat_message message(const std::string& from, const std::string& text,
                                        const std::string& cid = "", int64_t ts = 1000,
                                        const std::string& room = "general") {
    return protocol::chat_message{room, 0, from, text, ts, cid};
  }

  append_result append(const protocol::chat_message& msg, uint64_t epoch = 7) {
    return ask<append_result>(st, append_atom::value, epoch, msg);
  }

  protocol::error_code append_error(const protocol::chat_message& msg) {
    return to_protocol_error(ask_error<append_result>(st, append_atom::value, uint64_t{7}, msg));
  }

  room_snapshot open(const std::string& name = "general", uint32_t count = 10) {
    return ask<room_snapshot>(st, open_atom::value, name, count, true);
  }

  protocol::error_code open_error(const std::string& name) {
    return to_protocol_error(ask_error<room_snapshot>(st, open_atom::value, name, uint32_t{10}, true));
  }

  std::optional<storage::room_row> room_on_disk(const std::string& name) {
    storage::message_db db{make_db_options(cfg)};
    return db.find_room(name);
  }

  std::size_t rooms_on_disk() {
    storage::message_db db{make_db_options(cfg)};
    return db.count_rooms();
  }

  /// What a second connection (another process, say) sees in the file.
  std::vector<protocol::chat_message> on_disk(const std::string& name = "general") {
    storage::message_db db{make_db_options(cfg)};
    auto room = db.find_room(name);
    if (!room)
      return {};
    return db.after(room->key, name, 0, 1000).messages;
  }
};

inline std::vector<uint64_t> ids(const std::vector<protocol::chat_message>& messages) {
  std::vector<uint64_t> out;
  for (auto& m : messages)
    out.push_back(m.id);
  return out;
}


} // namespace parley::testing

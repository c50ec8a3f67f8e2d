// End-to-end: two Parley nodes in cluster mode behind Debian's nginx with the shipped
// deploy/nginx/cluster.conf. One node is SIGKILLed while messages flow; its clients reconnect
// through nginx to the other node and recover with since/epoch, so that every acknowledged message
// reaches every reader exactly once.

#include "cluster_fixture.hpp"
#include "nginx_cluster.hpp"
#include "wss_client.hpp"

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace parley::e2e;

namespace {

/// A chat client behind nginx that reconnects (through nginx, so to a live node) and recovers
/// with since/epoch whenever its connection ends.
class resilient_client {
public:
  resilient_client(nginx_cluster& front, std::string name, std::string room)
    : front_(front), name_(std::move(name)), room_(std::move(room)) {
    reconnect();
  }

  /// Every message id received, live or recovered, in order of arrival.
  const std::vector<uint64_t>& received() const { return received_; }
  int reconnects() const { return reconnects_; }
  bool all_recovered() const { return all_recovered_; }

  /// Sends `text` with `cid` until its echo comes back (retrying the same cid after a reconnect,
  /// which the store deduplicates); returns its id.
  uint64_t send_until_acknowledged(const std::string& text, const std::string& cid) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (!client_->try_send({{"type", "send"}, {"room", room_}, {"text", text}, {"cid", cid}})) {
        reconnect();
        continue;
      }
      bool refused = false;
      while (!refused) {
        auto frame = client_->try_next(5s);
        if (!frame)
          break;  // the connection ended
        take(*frame);
        if ((*frame)["type"] == "message" && (*frame)["cid"] == cid)
          return (*frame)["id"].get<uint64_t>();
        // e.g. store_unavailable for a moment: the same cid goes again
        refused = (*frame)["type"] == "error";
      }
      if (!refused)
        reconnect();
    }
    FAIL(name_ << ": " << cid << " was never acknowledged");
    return 0;
  }

  /// Reads until message `last` has arrived, reconnecting as often as needed.
  void read_until(uint64_t last) {
    for (int round = 0; round < 20 && seen_ < last; ++round) {
      while (seen_ < last) {
        auto frame = client_->try_next(5s);
        if (!frame)
          break;
        take(*frame);
      }
      if (seen_ < last)
        reconnect();
    }
    CHECK_MESSAGE(seen_ >= last, name_ << " saw up to " << seen_ << ", not " << last);
  }

private:
  void take(const json& frame) {
    if (frame["type"] == "message") {
      received_.push_back(frame["id"].get<uint64_t>());
      seen_ = std::max(seen_, frame["id"].get<uint64_t>());
    }
  }

  void reconnect() {
    // Like a browser: a connection that fails just after a node died is tried again.
    std::optional<unsigned> status;
    for (int attempt = 0; attempt < 20 && status != 101u; ++attempt) {
      if (reconnects_ > 0 || attempt > 0)
        std::this_thread::sleep_for(100ms);
      client_ = std::make_unique<wss_client>();
      status = client_->try_upgrade(front_.https_port(), name_, front_.browser());
    }
    ++reconnects_;
    REQUIRE_MESSAGE(status == 101u, name_ << ": no upgrade through nginx after 20 attempts");
    client_->next();  // welcome
    json join{{"type", "join"}, {"room", room_}};
    if (epoch_ != 0) {
      join["since"] = seen_;
      join["epoch"] = epoch_;
    }
    client_->send(join);
    auto joined = client_->next_of_type("joined");
    if (epoch_ != 0)
      all_recovered_ = all_recovered_ && joined.value("recovered", false);
    epoch_ = joined["epoch"].get<uint64_t>();
    for (const auto& msg : joined["history"])
      if (epoch_ != 0 && msg["id"].get<uint64_t>() > seen_ && reconnects_ > 1)
        take(msg);
    if (reconnects_ == 1)
      seen_ = joined["last_id"].get<uint64_t>();
  }

  nginx_cluster& front_;
  std::string name_;
  std::string room_;
  std::unique_ptr<wss_client> client_;
  std::vector<uint64_t> received_;
  uint64_t seen_ = 0;
  uint64_t epoch_ = 0;
  int reconnects_ = 0;
  bool all_recovered_ = true;
};

} // namespace

TEST_SUITE("cluster") {

TEST_CASE("a node SIGKILLed under traffic: its clients reconnect through nginx to the other node, "
          "recover, and every acknowledged message reaches every reader exactly once") {
  redis_process redis;
  nginx_cluster front;
  server_process a{front.node_options(cluster_node_options(redis.address(), "a"))};
  server_process b{front.node_options(cluster_node_options(redis.address(), "b"))};
  front.start({a.port(), b.port()});

  // nginx alternates new connections over the nodes: the readers land on both.
  std::vector<std::unique_ptr<resilient_client>> readers;
  for (int i = 0; i < 4; ++i)
    readers.push_back(std::make_unique<resilient_client>(front, "reader" + std::to_string(i), "general"));
  resilient_client sender{front, "sender", "general"};

  constexpr int messages = 60;
  std::vector<uint64_t> acknowledged;
  for (int i = 1; i <= messages; ++i) {
    if (i == messages / 2)
      a.kill();  // no close frames, no drain: the sockets just end
    acknowledged.push_back(sender.send_until_acknowledged("m" + std::to_string(i), "cid-" + std::to_string(i)));
  }
  std::vector<uint64_t> expected;
  for (uint64_t id = 1; id <= messages; ++id)
    expected.push_back(id);
  CHECK(acknowledged == expected);

  int moved = 0;
  for (auto& reader : readers) {
    reader->read_until(acknowledged.back());
    CAPTURE(reader->reconnects());
    CHECK(reader->received() == expected);  // each once, in order, none lost
    CHECK(reader->all_recovered());
    moved += reader->reconnects() > 1 ? 1 : 0;
  }
  // Half of them were on the killed node.
  CHECK(moved >= 1);
}

} // TEST_SUITE

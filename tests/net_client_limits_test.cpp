// The table of connections and handshake buckets per client address, on an injected clock.

#include "net/client_limits.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <vector>

using namespace parley::net;
namespace ip = boost::asio::ip;
using namespace std::chrono_literals;

namespace {

struct fake_clock {
  client_limits::clock::time_point now{};
  client_limits::now_function function() {
    return [this] { return now; };
  }
};

ip::address addr(const char* text) {
  return ip::make_address(text);
}

client_limit_settings settings(std::size_t per_address, double rate, double burst,
                               std::size_t total = 0, std::size_t reserve = 0) {
  client_limit_settings cfg;
  cfg.max_connections_per_address = per_address;
  cfg.handshakes_per_second = rate;
  cfg.handshake_burst = burst;
  cfg.max_connections = total;
  cfg.answer_reserve = reserve;
  return cfg;
}

} // namespace

TEST_CASE("an address may hold max_connections_per_address connections and a closed one frees its place") {
  fake_clock clock;
  auto limits = std::make_shared<client_limits>(settings(2, 0, 0), clock.function());
  auto a = addr("192.0.2.1");
  std::vector<connection_slot> slots;
  for (int i = 0; i < 3; ++i) {
    auto slot = limits->accept();
    REQUIRE(slot);
    slot->assign(a);
    slots.push_back(std::move(*slot));
  }
  CHECK(slots[0].within_address_limit());
  CHECK(slots[1].within_address_limit());
  CHECK_FALSE(slots[2].within_address_limit());
  CHECK(limits->connections_of(a) == 3);
  // Another address is not affected.
  auto other = limits->accept();
  CHECK(other->assign(addr("192.0.2.2")));

  slots.erase(slots.begin());  // one connection ends
  CHECK(limits->connections_of(a) == 2);
  auto again = limits->accept();
  CHECK_FALSE(again->assign(a));  // the refused one still holds its descriptor
  slots.pop_back();
  again.reset();
  auto third = limits->accept();
  CHECK(third->assign(a));
}

TEST_CASE("a slot moved to the next owner releases once, and reassigning moves its count") {
  fake_clock clock;
  auto limits = std::make_shared<client_limits>(settings(5, 0, 0), clock.function());
  {
    auto slot = limits->accept();
    slot->assign(addr("192.0.2.1"));
    connection_slot moved = std::move(*slot);
    connection_slot moved_again;
    moved_again = std::move(moved);
    CHECK(limits->open_connections() == 1);
    CHECK(limits->connections_of(addr("192.0.2.1")) == 1);
    moved_again.assign(addr("192.0.2.9"));  // a proxied request names another client
    CHECK(limits->connections_of(addr("192.0.2.1")) == 0);
    CHECK(limits->connections_of(addr("192.0.2.9")) == 1);
  }
  CHECK(limits->open_connections() == 0);
  CHECK(limits->connections_of(addr("192.0.2.9")) == 0);
  CHECK(limits->tracked_addresses() == 0);
}

TEST_CASE("handshakes per address: a burst, then the refill rate, with the wait to retry") {
  fake_clock clock;
  auto limits = std::make_shared<client_limits>(settings(0, 2, 3), clock.function());
  auto a = addr("192.0.2.1");
  CHECK(limits->take_handshake(a) == 0);
  CHECK(limits->take_handshake(a) == 0);
  CHECK(limits->take_handshake(a) == 0);
  CHECK(limits->take_handshake(a) == 1);  // empty: one token takes 0.5 s, rounded up
  CHECK(limits->take_handshake(addr("192.0.2.2")) == 0);  // its own bucket
  clock.now += 500ms;
  CHECK(limits->take_handshake(a) == 0);
  CHECK(limits->take_handshake(a) > 0);
  clock.now += 10s;  // refills to the burst, not beyond
  for (int i = 0; i < 3; ++i)
    CHECK(limits->take_handshake(a) == 0);
  CHECK(limits->take_handshake(a) > 0);
}

TEST_CASE("rate 0 never limits handshakes and keeps no entries") {
  fake_clock clock;
  auto limits = std::make_shared<client_limits>(settings(0, 0, 0), clock.function());
  for (int i = 0; i < 1000; ++i)
    CHECK(limits->take_handshake(addr("192.0.2.1")) == 0);
  CHECK(limits->tracked_addresses() == 0);
}

TEST_CASE("addresses without connections and with a full bucket leave the table") {
  fake_clock clock;
  auto limits = std::make_shared<client_limits>(settings(10, 1, 2), clock.function());
  for (int i = 1; i <= 100; ++i) {
    auto text = "10.0.0." + std::to_string(i);
    limits->take_handshake(ip::make_address(text));
  }
  CHECK(limits->tracked_addresses() == 100);
  // Buckets refill within a second; the next operation past the sweep interval drops them.
  clock.now += 2s;
  limits->take_handshake(addr("192.0.2.1"));
  CHECK(limits->tracked_addresses() == 1);

  // An address whose last connection ends with a full bucket is removed at once.
  clock.now += 2s;
  {
    auto slot = limits->accept();
    slot->assign(addr("192.0.2.7"));
    CHECK(limits->connections_of(addr("192.0.2.7")) == 1);
  }
  CHECK(limits->connections_of(addr("192.0.2.7")) == 0);
  clock.now += 2s;
  limits->take_handshake(addr("192.0.2.8"));
  CHECK(limits->tracked_addresses() == 1);
}

TEST_CASE("over max_connections upgrades are refused, the answer reserve is answered, beyond it closed") {
  fake_clock clock;
  auto limits = std::make_shared<client_limits>(settings(0, 0, 0, 2, 1), clock.function());
  auto first = limits->accept();
  auto second = limits->accept();
  auto third = limits->accept();
  auto fourth = limits->accept();
  REQUIRE(first);
  REQUIRE(second);
  REQUIRE(third);
  CHECK(first->within_server_limit());
  CHECK(second->within_server_limit());
  CHECK_FALSE(third->within_server_limit());  // answered, but may not upgrade
  CHECK_FALSE(fourth);                         // closed at once
  CHECK(limits->open_connections() == 3);
  first.reset();
  auto fifth = limits->accept();
  REQUIRE(fifth);
  CHECK_FALSE(fifth->within_server_limit());  // 3 open again: second, third, fifth
  second.reset();
  third.reset();
  auto sixth = limits->accept();
  CHECK(sixth->within_server_limit());
}

TEST_CASE("the automatic connection limit leaves room below the file-descriptor limit") {
  CHECK(connection_limit(0, 20000, 16) == 20000 - 32 - 16);
  CHECK(connection_limit(100, 20000, 16) == 100);
  CHECK(connection_limit(50000, 20000, 16) == 20000 - 32 - 16);
  CHECK(connection_limit(0, 10, 16) == 1);
  CHECK(raise_file_limit() > 0);
}

// The cluster tests' Redis (redis_process.hpp) does what they rely on: it comes up answering
// PING on its own loopback port, keeps what it acknowledged across a stop, a crash and a start on
// the same port, freezes on demand, and leaves nothing running.

#include "harness.hpp"
#include "child_process.hpp"
#include "redis_process.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

using namespace parley::e2e;

TEST_SUITE("cluster") {

TEST_CASE("redis_process runs Redis on its own loopback port with the strict durability settings") {
  redis_process redis;
  CHECK(redis.port() != 0);
  CHECK(redis.address() == "127.0.0.1:" + std::to_string(redis.port()));
  CHECK(redis.running());
  CHECK(redis.command({"PING"}) == "+PONG\r\n");
  CHECK(redis.command({"SET", "greeting", "hello\r\nworld"}) == "+OK\r\n");
  CHECK(resp_bulk(redis.command({"GET", "greeting"})) == "hello\r\nworld");
  CHECK(resp_bulk(redis.command({"GET", "nothing-here"})) == std::nullopt);
  // What Parley's strict mode expects of the server it talks to (docs/cluster.md).
  CHECK(resp_strings(redis.command({"CONFIG", "GET", "appendonly"})) ==
        std::vector<std::string>{"appendonly", "yes"});
  CHECK(resp_strings(redis.command({"CONFIG", "GET", "appendfsync"})) ==
        std::vector<std::string>{"appendfsync", "always"});
  CHECK(resp_strings(redis.command({"CONFIG", "GET", "save"})) ==
        std::vector<std::string>{"save", ""});
  // An error is a reply like any other, for tests that expect one.
  CHECK(redis.command({"NO-SUCH-COMMAND"}).rfind("-ERR", 0) == 0);
}

TEST_CASE("redis_process options reach redis-server") {
  redis_options opts;
  opts.appendfsync = "everysec";
  opts.extra_args = {"--maxmemory", "12mb"};
  redis_process redis{opts};
  CHECK(resp_strings(redis.command({"CONFIG", "GET", "appendfsync"})) ==
        std::vector<std::string>{"appendfsync", "everysec"});
  CHECK(resp_strings(redis.command({"CONFIG", "GET", "maxmemory"})) ==
        std::vector<std::string>{"maxmemory", std::to_string(12 * 1024 * 1024)});
}

TEST_CASE("after stop() the port is closed, and start() brings back the keys on the same port") {
  redis_process redis;
  auto port = redis.port();
  redis.command({"SET", "kept", "across a restart"});
  redis.command({"XADD", "parley:test:stream", "*", "text", "one"});
  redis.command({"XADD", "parley:test:stream", "*", "text", "two"});

  redis.stop();
  CHECK_FALSE(redis.running());
  CHECK_FALSE(accepts_connections(port));
  CHECK(redis.try_command({"PING"}, 500ms) == std::nullopt);

  redis.start();
  CHECK(redis.running());
  CHECK(redis.port() == port);
  CHECK(resp_bulk(redis.command({"GET", "kept"})) == "across a restart");
  CHECK(resp_integer(redis.command({"XLEN", "parley:test:stream"})) == 2);
  CHECK(resp_strings(redis.command({"KEYS", "parley:*"})) ==
        std::vector<std::string>{"parley:test:stream"});
}

TEST_CASE("with appendfsync always a write Redis acknowledged survives a SIGKILL") {
  redis_process redis;
  for (int i = 0; i < 50; ++i)
    redis.command({"XADD", "parley:test:crash", "*", "n", std::to_string(i)});
  CHECK(resp_integer(redis.command({"INCR", "parley:test:counter"})) == 1);

  redis.kill();
  CHECK_FALSE(redis.running());
  CHECK_FALSE(accepts_connections(redis.port()));

  redis.start();
  CHECK(resp_integer(redis.command({"XLEN", "parley:test:crash"})) == 50);
  CHECK(resp_integer(redis.command({"INCR", "parley:test:counter"})) == 2);
}

TEST_CASE("a paused Redis accepts connections but answers nothing until it is resumed") {
  redis_process redis;
  redis.pause();
  CHECK(redis.running());
  CHECK(accepts_connections(redis.port()));  // the kernel still completes the handshake
  CHECK(redis.try_command({"PING"}, 300ms) == std::nullopt);
  redis.resume();
  CHECK(redis.command({"PING"}) == "+PONG\r\n");
}

TEST_CASE("the destructor leaves nothing listening, even when Redis is paused") {
  uint16_t port = 0;
  {
    redis_process redis;
    port = redis.port();
    CHECK(accepts_connections(port));
  }
  CHECK_FALSE(accepts_connections(port));
  {
    redis_process redis;
    redis.pause();  // even a paused Redis is ended by the destructor
    port = redis.port();
  }
  CHECK_FALSE(accepts_connections(port));
}

TEST_CASE("RESP replies are recognised only once complete") {
  CHECK(resp_reply_length("") == 0);
  CHECK(resp_reply_length("+OK") == 0);
  CHECK(resp_reply_length("+OK\r\n") == 5);
  CHECK(resp_reply_length(":12\r\n+next\r\n") == 5);
  CHECK(resp_reply_length("$5\r\nhel") == 0);
  CHECK(resp_reply_length("$5\r\nhello\r\n") == 11);
  CHECK(resp_reply_length("$-1\r\n") == 5);
  CHECK(resp_reply_length("*2\r\n$1\r\na\r\n") == 0);
  CHECK(resp_reply_length("*2\r\n$1\r\na\r\n:7\r\n") == 15);
  CHECK(resp_reply_length("*1\r\n*1\r\n+deep\r\n") == 15);
  CHECK(resp_reply_length("*-1\r\n") == 5);
  CHECK_THROWS_AS(resp_reply_length("HTTP/1.1 200 OK\r\n"), std::invalid_argument);
  CHECK(resp_strings("*0\r\n").empty());
  CHECK(resp_strings("*2\r\n$1\r\na\r\n$-1\r\n") == std::vector<std::string>{"a", ""});
}

} // TEST_SUITE("cluster")

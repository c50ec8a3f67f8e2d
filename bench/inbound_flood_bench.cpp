// inbound_flood_bench: how much server memory can one client add by writing as fast as it can?
//
// For each kind of frame, one fresh connection writes that frame back to back for --seconds, and
// reads (and drops) whatever the server answers, so that only the inbound side is measured. The
// server's VmRSS (/proc/<pid>/status) is sampled every 50 ms; the result is the largest growth over
// the value before that connection opened. Start the server with the rate and abuse limits lifted
// (bench/run.sh does), or every flood is simply cut off after a few frames.
//
// Kinds: send (valid messages to a joined room: stored and broadcast), history (valid requests
// whose answers are large), bad_json, binary, ping, big_text (60 KiB text frames that are not
// JSON).

#include "ws_client_pool.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using bench::now_ns;

struct flood_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  long pid = 0;
  double seconds = 5;
};

/// One client frame: FIN, the opcode, and an all-zero mask (the payload goes as it is).
std::string client_frame(uint8_t opcode, const std::string& payload) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xFF);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8)
      f += static_cast<char>((payload.size() >> shift) & 0xFF);
  }
  f.append(4, '\0');
  f += payload;
  return f;
}

/// A blocking TCP connection, upgraded to WebSocket by hand.
int open_websocket(const flood_options& o, const std::string& name) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("connect");
    std::exit(2);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::string request = "GET /ws?name=" + name + " HTTP/1.1\r\nHost: " + o.host + ":" +
                        std::to_string(o.port) +
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    std::perror("write");
    std::exit(2);
  }
  std::string response;
  char c;
  while (response.find("\r\n\r\n") == std::string::npos && ::read(fd, &c, 1) == 1)
    response += c;
  if (response.rfind("HTTP/1.1 101", 0) != 0) {
    std::fprintf(stderr, "upgrade refused:\n%s\n", response.c_str());
    std::exit(2);
  }
  return fd;
}

struct flood_result {
  double mib_written = 0;
  double max_growth_mib = 0;
  bool closed_by_server = false;
};

/// Writes `frame` back to back for `seconds`, reading and dropping the answers.
flood_result flood(const flood_options& o, int fd, const std::string& frame, long rss_before_kib) {
  std::string burst;
  while (burst.size() < 256 * 1024)
    burst += frame;
  flood_result r;
  std::size_t offset = 0;
  uint64_t written = 0;
  std::vector<char> sink(1 << 16);
  int64_t end = now_ns() + static_cast<int64_t>(o.seconds * 1e9);
  int64_t next_sample = 0;
  while (now_ns() < end) {
    if (now_ns() >= next_sample) {
      long rss = bench::read_rss_kib(o.pid);
      r.max_growth_mib = std::max(r.max_growth_mib, (rss - rss_before_kib) / 1024.0);
      next_sample = now_ns() + 50'000'000;
    }
    pollfd p{fd, POLLIN | POLLOUT, 0};
    if (::poll(&p, 1, 50) <= 0)
      continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      auto n = ::read(fd, sink.data(), sink.size());
      if (n <= 0) {
        r.closed_by_server = true;
        break;
      }
    }
    if (p.revents & POLLOUT) {
      auto n = ::send(fd, burst.data() + offset, burst.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        r.closed_by_server = true;
        break;
      }
      if (n > 0) {
        written += static_cast<uint64_t>(n);
        offset = (offset + static_cast<std::size_t>(n)) % burst.size();
      }
    }
  }
  long rss = bench::read_rss_kib(o.pid);
  r.max_growth_mib = std::max(r.max_growth_mib, (rss - rss_before_kib) / 1024.0);
  r.mib_written = written / (1024.0 * 1024.0);
  return r;
}

} // namespace

int main(int argc, char** argv) {
  bench::arg_map args(argc, argv);
  if (args.has("help") || !args.has("pid")) {
    std::puts("inbound_flood_bench --pid SERVER_PID [--host 127.0.0.1 --port N --seconds 5 --only KIND]");
    return args.has("help") ? 0 : 2;
  }
  flood_options o;
  o.host = args.str("host", o.host);
  o.port = static_cast<uint16_t>(args.num("port", o.port));
  o.pid = args.num("pid", 0);
  o.seconds = args.real("seconds", o.seconds);
  auto only = args.str("only", "");

  struct kind {
    const char* name;
    uint8_t opcode;
    std::string payload;
    bool join;
  };
  std::string text(100, 'x');
  std::vector<kind> kinds = {
    {"send", 0x1, R"({"type":"send","room":"flood","text":")" + text + R"("})", true},
    {"history", 0x1, R"({"type":"history","room":"flood","limit":100})", true},
    {"bad_json", 0x1, "{not json", false},
    {"binary", 0x2, std::string(100, '\x01'), false},
    {"ping", 0x9, "ping", false},
    {"big_text", 0x1, std::string(60 * 1024, 'y'), false},
  };
  double worst = 0;
  int k = 0;
  for (const auto& kd : kinds) {
    if (!only.empty() && only != kd.name)
      continue;
    long before = bench::read_rss_kib(o.pid);
    if (before < 0) {
      std::fprintf(stderr, "cannot read /proc/%ld/status\n", o.pid);
      return 2;
    }
    int fd = open_websocket(o, "flood" + std::to_string(k++));
    if (kd.join) {
      auto join = client_frame(0x1, R"({"type":"join","room":"flood"})");
      (void)!::write(fd, join.data(), join.size());
    }
    auto r = flood(o, fd, client_frame(kd.opcode, kd.payload), before);
    ::close(fd);
    worst = std::max(worst, r.max_growth_mib);
    std::printf("RESULT inbound_flood kind=%s mib_written=%.1f max_rss_growth_mib=%.1f closed_by_server=%d\n",
                kd.name, r.mib_written, r.max_growth_mib, r.closed_by_server ? 1 : 0);
    std::fflush(stdout);
    // Let the server finish with this connection before the next baseline.
    ::usleep(1'000'000);
  }
  std::printf("RESULT inbound_flood_worst max_rss_growth_mib=%.1f\n", worst);
  return 0;
}

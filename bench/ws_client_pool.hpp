#pragma once

// A minimal, single-threaded WebSocket client pool for the benchmarks: raw non-blocking sockets and
// one epoll loop. Written by hand (instead of Beast clients) so that the load generator costs as
// little CPU as possible: the server under test shares the same two cores.
//
// It speaks just enough RFC 6455 to be correct against Parley: the HTTP upgrade (with the
// Sec-WebSocket-Accept check), masked client text frames, unmasked server frames of any length,
// fragmented messages, ping -> pong, and close. It is a header because CMake turns every
// bench/*.cpp into its own executable; every network benchmark (and tests/e2e/join_storm_test.cpp)
// includes it.
//
// A slot can be used for many connections one after another (`connect_now` once the previous one
// ended), which the churn benchmark needs. When the client closes, it follows RFC 6455 section
// 7.1.1: once the server answered its close frame it waits for the server to close TCP first, so
// TIME_WAIT lands on the server's side and thousands of sessions per second do not use up the
// client's ports. (A close the server starts is echoed and the socket dropped at once.)

#include <boost/uuid/detail/sha1.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// -- small helpers --------------------------------------------------------------------------------

/// Monotonic nanoseconds; every timestamp in the benchmarks uses this one clock.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// `--key value` and `--key=value` arguments; a flag without a value maps to "1".
class arg_map {
public:
  arg_map(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) {
        std::fprintf(stderr, "unexpected argument: %s\n", a.c_str());
        std::exit(2);
      }
      a.erase(0, 2);
      if (auto eq = a.find('='); eq != std::string::npos)
        values_[a.substr(0, eq)] = a.substr(eq + 1);
      else if (i + 1 < argc && std::string_view{argv[i + 1]}.rfind("--", 0) != 0)
        values_[a] = argv[++i];
      else
        values_[a] = "1";
    }
  }

  std::string str(const std::string& key, std::string fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }

  long num(const std::string& key, long fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : std::strtol(it->second.c_str(), nullptr, 10);
  }

  double real(const std::string& key, double fallback) const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : std::strtod(it->second.c_str(), nullptr);
  }

  bool has(const std::string& key) const { return values_.count(key) != 0; }

private:
  std::map<std::string, std::string> values_;
};

/// xorshift64*: cheap randomness for mask keys and handshake nonces (not security relevant here).
class fast_rng {
public:
  explicit fast_rng(uint64_t seed) : s_(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }

private:
  uint64_t s_;
};

inline std::string base64(const unsigned char* data, std::size_t n) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < n; i += 3) {
    uint32_t chunk = uint32_t(data[i]) << 16;
    if (i + 1 < n) chunk |= uint32_t(data[i + 1]) << 8;
    if (i + 2 < n) chunk |= uint32_t(data[i + 2]);
    out += alphabet[(chunk >> 18) & 63];
    out += alphabet[(chunk >> 12) & 63];
    out += i + 1 < n ? alphabet[(chunk >> 6) & 63] : '=';
    out += i + 2 < n ? alphabet[chunk & 63] : '=';
  }
  return out;
}

/// The Sec-WebSocket-Accept a correct server answers to `key` (RFC 6455 section 4.2.2).
inline std::string expected_accept(const std::string& key) {
  std::string input = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  boost::uuids::detail::sha1 h;
  h.process_bytes(input.data(), input.size());
  unsigned int words[5];
  h.get_digest(words);
  unsigned char digest[20];
  for (int i = 0; i < 5; ++i)
    for (int b = 0; b < 4; ++b)
      digest[4 * i + b] = static_cast<unsigned char>(words[i] >> (24 - 8 * b));
  return base64(digest, 20);
}

/// Reads `VmRSS` (in KiB) of a process from /proc; -1 if it cannot be read.
inline long read_rss_kib(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

/// CPU time (user + system) a process has used, in seconds, from /proc/<pid>/stat; -1 if unreadable.
inline double read_cpu_seconds(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close_paren = stat.rfind(')'); // the command name may contain spaces
  if (close_paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close_paren + 2));
  std::string skip;
  for (int k = 3; k < 14; ++k) fields >> skip; // state .. cmajflt: fields 3 to 13
  unsigned long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return -1;
  return double(utime + stime) / double(sysconf(_SC_CLK_TCK));
}

/// Raises this process's soft open-file limit to the hard limit (the server and the client each
/// need one descriptor per connection); returns the limit now in force.
inline long raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur == RLIM_INFINITY ? 1L << 20 : long(lim.rlim_cur);
}

/// The first line of a /proc/sys file, or "" when it cannot be read.
inline std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

/// CPU time this process has used so far, in seconds.
inline double own_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// -- the pool --------------------------------------------------------------------------------------

/// What a pool reports to the benchmark driving it. Every hook runs on the loop's thread.
class pool_events {
public:
  virtual ~pool_events() = default;
  /// The upgrade succeeded; the connection may send.
  virtual void on_open(std::size_t client) = 0;
  /// One complete text message. `now` is the receive time of the read that completed it.
  virtual void on_text(std::size_t client, const char* data, std::size_t n, int64_t now) = 0;
  /// The connection ended: `code` is the server's close code, or 0 without a close frame.
  virtual void on_closed(std::size_t client, uint16_t code, const std::string& why) = 0;
};

/// Totals the pool keeps for the report.
struct pool_stats {
  uint64_t frames_in = 0;
  uint64_t bytes_in = 0;
  uint64_t frames_out = 0;
  uint64_t pings = 0;
  uint64_t failed = 0;          // connections that ended before or without a clean close
  uint64_t connects = 0;        // TCP connects started
  uint64_t connect_errors = 0;  // connects refused or failed before the upgrade
  uint64_t no_port_errors = 0;  // of those, EADDRNOTAVAIL: the source address ran out of ports
};

/// N WebSocket client connections driven by one epoll loop.
class client_pool {
public:
  /// Connects nothing yet; `start_connecting` then `poll` do the work.
  client_pool(std::string host, uint16_t port, std::size_t count, pool_events& events,
              std::size_t max_pending_connects = 64)
    : host_(std::move(host)), port_(port), events_(events), clients_(count),
      max_pending_(max_pending_connects), rng_(static_cast<uint64_t>(now_ns())) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) die("epoll_create1");
    std::memset(&addr_, 0, sizeof addr_);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(port_);
    if (inet_pton(AF_INET, host_.c_str(), &addr_.sin_addr) != 1) {
      std::fprintf(stderr, "host must be an IPv4 address: %s\n", host_.c_str());
      std::exit(2);
    }
    scratch_.resize(256 * 1024);
  }

  ~client_pool() {
    for (auto& c : clients_)
      if (c.fd >= 0) ::close(c.fd);
    ::close(epfd_);
  }

  client_pool(const client_pool&) = delete;
  client_pool& operator=(const client_pool&) = delete;

  /// The path requested for client `i`, e.g. "/ws?name=m7". Set before start_connecting().
  void set_path(std::size_t i, std::string path) { clients_[i].path = std::move(path); }

  /// The server port client `i` connects to instead of the pool's (several servers on one host,
  /// e.g. the nodes of a cluster). Set before the client connects.
  void set_port(std::size_t i, uint16_t port) { clients_[i].port = port; }

  /// Binds every new connection to one of 127.0.0.1 ... 127.0.0.<count> in turn before it
  /// connects (the server must listen on loopback). Each source address has its own range of
  /// ephemeral ports (net.ipv4.ip_local_port_range, ~28k here), so close to 20k open connections,
  /// or thousands of new ones per second, do not run out of ports. 0 or 1: the kernel's choice.
  void spread_source_addresses(unsigned count) {
    sources_.clear();
    for (unsigned k = 1; count > 1 && k <= count && k < 255; ++k) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl((127u << 24) | k);
      sources_.push_back(a);
    }
  }

  /// Begins connecting clients 0 .. up_to-1 in order; at most max_pending_connects handshakes are
  /// in flight at a time so that the server's accept backlog never overflows (an overflow costs a
  /// 1 s SYN retransmit). Slots after up_to stay free for connect_now().
  void start_connecting(std::size_t up_to = SIZE_MAX) {
    auto_connect_limit_ = std::min(up_to, clients_.size());
    fill_connect_window();
  }

  /// Starts a connection in slot `i` now, outside the connect window. The slot must not hold a
  /// connection (never used, or on_closed was reported for it). Set its path first. A connect that
  /// fails at once is reported through on_closed before this returns.
  void connect_now(std::size_t i) {
    auto& c = clients_[i];
    if (c.fd >= 0) return;
    begin_connect(i);
  }

  /// Drops one connection without a close handshake; on_closed follows with code 0 and `why`.
  void abort(std::size_t i, const std::string& why) {
    if (clients_[i].fd >= 0) end(i, 0, why, false);
  }

  std::size_t size() const { return clients_.size(); }
  std::size_t open_count() const { return open_; }
  /// Connections that ended so far (a reused slot counts once per connection).
  std::size_t ended_count() const { return ended_; }
  /// Connections that hold a socket now: connecting, upgrading, open or closing.
  std::size_t live_count() const { return live_; }
  const pool_stats& stats() const { return stats_; }
  bool is_open(std::size_t i) const { return clients_[i].state == conn_state::open; }
  bool is_live(std::size_t i) const { return clients_[i].fd >= 0; }

  /// Runs the loop for at most `timeout_ms` (one epoll_wait and the work it reports).
  void poll(int timeout_ms) {
    epoll_event evs[256];
    int n = epoll_wait(epfd_, evs, 256, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    int64_t now = now_ns();
    for (int k = 0; k < n; ++k) {
      std::size_t i = evs[k].data.u64;
      if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(i, now);
      if (clients_[i].fd >= 0 && (evs[k].events & EPOLLOUT)) on_writable(i);
    }
  }

  /// Sends one masked text frame; queued if the socket cannot take it now.
  void send_text(std::size_t i, std::string_view payload) {
    auto& c = clients_[i];
    if (c.state != conn_state::open) return;
    std::string frame;
    encode_frame(frame, 0x1, payload);
    ++stats_.frames_out;
    write_or_queue(i, std::move(frame));
  }

  /// Sends a close frame with `code` and stops expecting anything but the server's close (text
  /// frames the server sent before it saw ours are still reported). on_closed follows once the
  /// server answered and closed TCP.
  void send_close(std::size_t i, uint16_t code) {
    auto& c = clients_[i];
    if (c.state != conn_state::open) return;
    char body[2] = {char(code >> 8), char(code & 0xFF)};
    std::string frame;
    encode_frame(frame, 0x8, std::string_view{body, 2});
    write_or_queue(i, std::move(frame));
    c.state = conn_state::closing;
  }

  /// Closes every socket at once, without handshakes (end of a run).
  void abort_all() {
    for (std::size_t i = 0; i < clients_.size(); ++i)
      if (clients_[i].fd >= 0) end(i, 0, "aborted", false);
  }

private:
  // closing: our close frame is out; draining: close frames exchanged, waiting for the server's FIN.
  enum class conn_state : uint8_t { idle, connecting, upgrading, open, closing, draining, ended };

  struct client {
    int fd = -1;
    conn_state state = conn_state::idle;
    bool want_write = false;
    uint16_t close_code = 0; // the server's close code, kept while draining
    std::string path;
    uint16_t port = 0;   // 0: the pool's port
    std::string key;
    std::string inbuf;   // bytes of an incomplete frame (or the HTTP response) carried over
    std::string outbuf;  // bytes the socket did not take yet
    std::string message; // a fragmented message being assembled
  };

  [[noreturn]] static void die(const char* what) {
    std::perror(what);
    std::exit(2);
  }

  // -- connecting -----------------------------------------------------------------------------------

  void fill_connect_window() {
    // A connect that fails at once ends its client, and end() refills the window: without this
    // guard a run of failures would recurse once per client.
    if (filling_) return;
    filling_ = true;
    while (pending_ < max_pending_ && next_connect_ < auto_connect_limit_)
      begin_connect(next_connect_++);
    filling_ = false;
  }

  void begin_connect(std::size_t i) {
    auto& c = clients_[i];
    c.state = conn_state::idle;
    c.want_write = false;
    c.close_code = 0;
    c.key.clear();
    c.inbuf.clear();
    c.outbuf.clear();
    c.message.clear();
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket (raise ulimit -n?)");
    c.state = conn_state::connecting;
    ++pending_;
    ++live_;
    ++stats_.connects;
    int one = 1;
    // Frames are small and latency is measured: do not let Nagle hold them back.
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!sources_.empty()) {
      // Without IP_BIND_ADDRESS_NO_PORT, bind() would pick the port alone, unaware of the
      // destination, and every port could then be used for one connection only.
      setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      const auto& src = sources_[next_source_++ % sources_.size()];
      if (::bind(c.fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) < 0)
        return connect_failed(i, errno, "bind");
    }
    sockaddr_in dest = addr_;
    if (c.port != 0) dest.sin_port = htons(c.port);
    int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&dest), sizeof dest);
    if (rc < 0 && errno != EINPROGRESS) return connect_failed(i, errno, "connect");
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = i;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) < 0) die("epoll_ctl add");
    c.want_write = true;
  }

  void connect_failed(std::size_t i, int err, const char* step) {
    ++stats_.connect_errors;
    if (err == EADDRNOTAVAIL) ++stats_.no_port_errors;
    end(i, 0, std::string(step) + ": " + std::strerror(err), true);
  }

  void send_upgrade(std::size_t i) {
    auto& c = clients_[i];
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return connect_failed(i, err, "connect");
    unsigned char nonce[16];
    for (int k = 0; k < 16; k += 8) {
      uint64_t r = rng_.next();
      std::memcpy(nonce + k, &r, 8);
    }
    c.key = base64(nonce, 16);
    std::string req = "GET " + (c.path.empty() ? std::string("/ws") : c.path) +
                      " HTTP/1.1\r\nHost: " + host_ + ":" + std::to_string(port_) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
                      c.key + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    c.state = conn_state::upgrading;
    write_or_queue(i, std::move(req));
  }

  /// Consumes the HTTP response from inbuf; returns false if more bytes are needed.
  bool finish_upgrade(std::size_t i) {
    auto& c = clients_[i];
    auto end_of_head = c.inbuf.find("\r\n\r\n");
    if (end_of_head == std::string::npos) {
      if (c.inbuf.size() > 16384) end(i, 0, "oversized upgrade response", true);
      return false;
    }
    std::string head = c.inbuf.substr(0, end_of_head + 2);
    c.inbuf.erase(0, end_of_head + 4);
    if (head.rfind("HTTP/1.1 101", 0) != 0) {
      end(i, 0, "upgrade refused: " + head.substr(0, head.find('\r')), true);
      return false;
    }
    if (header_value(head, "sec-websocket-accept") != expected_accept(c.key)) {
      end(i, 0, "bad Sec-WebSocket-Accept", true);
      return false;
    }
    c.state = conn_state::open;
    --pending_;
    ++open_;
    if (auto_connect_limit_ > 0) fill_connect_window();
    events_.on_open(i);
    return true;
  }

  static std::string header_value(const std::string& head, const std::string& lower_name) {
    std::size_t pos = 0;
    while ((pos = head.find("\r\n", pos)) != std::string::npos) {
      pos += 2;
      auto colon = head.find(':', pos);
      auto eol = head.find("\r\n", pos);
      if (colon == std::string::npos || eol == std::string::npos || colon > eol) continue;
      std::string name = head.substr(pos, colon - pos);
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (name == lower_name) {
        auto v = head.substr(colon + 1, eol - colon - 1);
        auto b = v.find_first_not_of(' ');
        auto e = v.find_last_not_of(' ');
        return b == std::string::npos ? std::string{} : v.substr(b, e - b + 1);
      }
    }
    return {};
  }

  // -- writing --------------------------------------------------------------------------------------

  /// Client frames must be masked (RFC 6455 section 5.3); a fresh key per frame.
  void encode_frame(std::string& out, uint8_t opcode, std::string_view payload) {
    std::size_t n = payload.size();
    out.reserve(14 + n);
    out += char(0x80 | opcode);
    if (n < 126) {
      out += char(0x80 | n);
    } else if (n <= 0xFFFF) {
      out += char(0x80 | 126);
      out += char(n >> 8);
      out += char(n & 0xFF);
    } else {
      out += char(0x80 | 127);
      for (int k = 7; k >= 0; --k) out += char((uint64_t(n) >> (8 * k)) & 0xFF);
    }
    uint32_t key32 = static_cast<uint32_t>(rng_.next());
    char key[4];
    std::memcpy(key, &key32, 4);
    out.append(key, 4);
    std::size_t start = out.size();
    out.append(payload.data(), n);
    for (std::size_t k = 0; k < n; ++k) out[start + k] ^= key[k & 3];
  }

  void write_or_queue(std::size_t i, std::string bytes) {
    auto& c = clients_[i];
    if (!c.outbuf.empty()) {
      c.outbuf += bytes;
      return;
    }
    ssize_t w = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return end(i, 0, "send failed", true);
      w = 0;
    }
    if (static_cast<std::size_t>(w) < bytes.size()) {
      c.outbuf.assign(bytes, static_cast<std::size_t>(w), std::string::npos);
      arm_write(i, true);
    }
  }

  void arm_write(std::size_t i, bool on) {
    auto& c = clients_[i];
    if (c.want_write == on) return;
    c.want_write = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? uint32_t(EPOLLOUT) : 0u);
    ev.data.u64 = i;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void on_writable(std::size_t i) {
    auto& c = clients_[i];
    if (c.state == conn_state::connecting) {
      arm_write(i, false);
      return send_upgrade(i);
    }
    while (!c.outbuf.empty()) {
      ssize_t w = ::send(c.fd, c.outbuf.data(), c.outbuf.size(), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return end(i, 0, "send failed", true);
      }
      c.outbuf.erase(0, static_cast<std::size_t>(w));
    }
    arm_write(i, false);
  }

  // -- reading --------------------------------------------------------------------------------------

  void on_readable(std::size_t i, int64_t now) {
    auto& c = clients_[i];
    if (c.fd < 0) return;
    if (c.state == conn_state::connecting) return on_writable(i); // connect failed: SO_ERROR says why
    ssize_t r = ::recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (c.state == conn_state::draining && r != 0 && !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
      return end(i, c.close_code, "", false); // bytes or a reset after the close: done either way
    if (r == 0) {
      if (c.state == conn_state::draining) return end(i, c.close_code, "", false);
      return end(i, 0, "eof", c.state != conn_state::closing);
    }
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return end(i, 0, std::string("recv: ") + std::strerror(errno), true);
    }
    stats_.bytes_in += static_cast<uint64_t>(r);
    if (c.state == conn_state::upgrading) {
      c.inbuf.append(scratch_.data(), static_cast<std::size_t>(r));
      if (!finish_upgrade(i)) return;
      if (!c.inbuf.empty()) {
        std::string rest;
        rest.swap(c.inbuf);
        consume(i, rest.data(), rest.size(), now);
      }
      return;
    }
    // Common case: nothing carried over, parse straight out of the scratch buffer (no copy).
    if (c.inbuf.empty()) return consume(i, scratch_.data(), static_cast<std::size_t>(r), now);
    c.inbuf.append(scratch_.data(), static_cast<std::size_t>(r));
    std::string all;
    all.swap(c.inbuf);
    consume(i, all.data(), all.size(), now);
  }

  /// Parses every complete frame in [p, p+n) and keeps the incomplete tail in inbuf.
  void consume(std::size_t i, const char* p, std::size_t n, int64_t now) {
    std::size_t off = 0;
    while (clients_[i].fd >= 0) {
      std::size_t avail = n - off;
      if (avail < 2) break;
      auto b0 = static_cast<uint8_t>(p[off]);
      auto b1 = static_cast<uint8_t>(p[off + 1]);
      if (b1 & 0x80) return end(i, 0, "server frame is masked", true);
      std::size_t head = 2;
      uint64_t len = b1 & 0x7F;
      if (len == 126) {
        if (avail < 4) break;
        len = (uint64_t(uint8_t(p[off + 2])) << 8) | uint8_t(p[off + 3]);
        head = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int k = 0; k < 8; ++k) len = (len << 8) | uint8_t(p[off + 2 + k]);
        head = 10;
      }
      if (avail < head + len) break;
      on_frame(i, b0, p + off + head, static_cast<std::size_t>(len), now);
      off += head + static_cast<std::size_t>(len);
    }
    auto& c = clients_[i];
    if (c.fd >= 0 && off < n) c.inbuf.assign(p + off, n - off);
  }

  void on_frame(std::size_t i, uint8_t b0, const char* data, std::size_t n, int64_t now) {
    auto& c = clients_[i];
    bool fin = b0 & 0x80;
    uint8_t opcode = b0 & 0x0F;
    ++stats_.frames_in;
    switch (opcode) {
      case 0x1:
        if (fin) return events_.on_text(i, data, n, now);
        c.message.assign(data, n);
        return;
      case 0x0:
        c.message.append(data, n);
        if (fin) {
          std::string whole;
          whole.swap(c.message);
          events_.on_text(i, whole.data(), whole.size(), now);
        }
        return;
      case 0x2:
        return; // Parley never sends binary frames; ignore rather than fail the run
      case 0x8: {
        uint16_t code = n >= 2 ? uint16_t((uint8_t(data[0]) << 8) | uint8_t(data[1])) : 1005;
        std::string why = n > 2 ? std::string(data + 2, n - 2) : std::string{};
        if (c.state == conn_state::open) {
          // The server closes: echo as RFC 6455 asks and report at once (the caller wants to know
          // now, e.g. a 4000); the socket is dropped without waiting.
          send_close(i, code);
          return end(i, code, why, false);
        }
        // Our close was answered: wait for the server's FIN so that it, not we, keeps TIME_WAIT.
        c.state = conn_state::draining;
        c.close_code = code;
        return;
      }
      case 0x9: {
        ++stats_.pings;
        std::string frame;
        encode_frame(frame, 0xA, std::string_view{data, n});
        return write_or_queue(i, std::move(frame));
      }
      default:
        return; // pong: nothing to do
    }
  }

  void end(std::size_t i, uint16_t code, const std::string& why, bool failure) {
    auto& c = clients_[i];
    if (c.fd < 0) return;
    --live_;
    bool was_pending = c.state == conn_state::connecting || c.state == conn_state::upgrading;
    bool was_open = c.state == conn_state::open || c.state == conn_state::closing ||
                    c.state == conn_state::draining;
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.state = conn_state::ended;
    std::string().swap(c.inbuf);
    std::string().swap(c.outbuf);
    if (failure) ++stats_.failed;
    if (was_pending) {
      --pending_;
      if (auto_connect_limit_ > 0) fill_connect_window();
    }
    if (was_open) --open_;
    ++ended_;
    events_.on_closed(i, code, why);
  }

  std::string host_;
  uint16_t port_;
  sockaddr_in addr_;
  pool_events& events_;
  std::vector<client> clients_;
  std::size_t max_pending_;
  std::size_t pending_ = 0;
  std::size_t next_connect_ = 0;
  std::size_t auto_connect_limit_ = 0; // start_connecting() connects slots below this one
  bool filling_ = false;
  std::vector<sockaddr_in> sources_;
  std::size_t next_source_ = 0;
  std::size_t live_ = 0;
  std::size_t open_ = 0;
  std::size_t ended_ = 0;
  int epfd_ = -1;
  fast_rng rng_;
  std::vector<char> scratch_;
  pool_stats stats_;
};

} // namespace bench

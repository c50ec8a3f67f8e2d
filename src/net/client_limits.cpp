#include "net/client_limits.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace parley::net {

namespace ip = boost::asio::ip;

namespace {

// Descriptors the process needs besides its connections: the database and its WAL, log files,
// the acceptor, event loops, CAF and the standard streams, with room to spare.
constexpr std::size_t process_reserve = 32;

// Entries whose bucket may have filled up are looked for at most this often.
constexpr auto sweep_interval = std::chrono::seconds(1);

} // namespace

// -- connection_slot -----------------------------------------------------------------------------

connection_slot::~connection_slot() {
  release();
}

connection_slot::connection_slot(connection_slot&& other) noexcept {
  *this = std::move(other);
}

connection_slot& connection_slot::operator=(connection_slot&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::move(other.owner_);
    client_ = other.client_;
    has_client_ = other.has_client_;
    within_server_limit_ = other.within_server_limit_;
    within_address_limit_ = other.within_address_limit_;
    other.owner_.reset();
    other.has_client_ = false;
  }
  return *this;
}

bool connection_slot::assign(const ip::address& client) {
  if (!owner_ || (has_client_ && client_ == client))
    return within_address_limit_;
  if (has_client_)
    owner_->remove_connection(client_);
  client_ = client;
  has_client_ = true;
  within_address_limit_ = owner_->add_connection(client);
  return within_address_limit_;
}

void connection_slot::release() {
  if (!owner_)
    return;
  if (has_client_)
    owner_->remove_connection(client_);
  owner_->release_total();
  owner_.reset();
  has_client_ = false;
}

// -- client_limits -------------------------------------------------------------------------------

std::size_t client_limits::address_hash::operator()(const ip::address& a) const {
  if (a.is_v4())
    return std::hash<uint32_t>{}(a.to_v4().to_uint());
  auto bytes = a.to_v6().to_bytes();
  std::size_t h = 0;
  for (auto b : bytes)
    h = h * 131 + b;
  return h;
}

client_limits::client_limits(client_limit_settings cfg, now_function now)
  : cfg_(cfg), now_(std::move(now)) {
  next_sweep_ = now_() + sweep_interval;
}

std::optional<connection_slot> client_limits::accept() {
  std::lock_guard<std::mutex> guard{mtx_};
  bool limited = cfg_.max_connections > 0;
  if (limited && total_ >= cfg_.max_connections + cfg_.answer_reserve)
    return std::nullopt;
  ++total_;
  connection_slot slot;
  slot.owner_ = shared_from_this();
  slot.within_server_limit_ = !limited || total_ <= cfg_.max_connections;
  return slot;
}

unsigned client_limits::take_handshake(const ip::address& client) {
  if (cfg_.handshakes_per_second <= 0)
    return 0;
  auto now = now_();
  std::lock_guard<std::mutex> guard{mtx_};
  sweep(now);
  auto& e = entry_for(client, now);
  if (e.tokens >= 1) {
    e.tokens -= 1;
    return 0;
  }
  auto wait = std::ceil((1 - e.tokens) / cfg_.handshakes_per_second);
  return static_cast<unsigned>(std::max(1.0, wait));
}

std::size_t client_limits::open_connections() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return total_;
}

std::size_t client_limits::tracked_addresses() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return table_.size();
}

std::size_t client_limits::connections_of(const ip::address& client) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = table_.find(client);
  return it == table_.end() ? 0 : it->second.connections;
}

bool client_limits::add_connection(const ip::address& client) {
  if (cfg_.max_connections_per_address == 0)
    return true;
  auto now = now_();
  std::lock_guard<std::mutex> guard{mtx_};
  sweep(now);
  auto& e = entry_for(client, now);
  ++e.connections;
  // A refused connection still counts until it is closed: it holds a descriptor all the same.
  return e.connections <= cfg_.max_connections_per_address;
}

void client_limits::remove_connection(const ip::address& client) {
  if (cfg_.max_connections_per_address == 0)
    return;
  auto now = now_();
  std::lock_guard<std::mutex> guard{mtx_};
  auto it = table_.find(client);
  if (it == table_.end())
    return;
  auto& e = it->second;
  if (e.connections > 0)
    --e.connections;
  refill(e, now);
  if (removable(e))
    table_.erase(it);
}

void client_limits::release_total() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (total_ > 0)
    --total_;
}

client_limits::entry& client_limits::entry_for(const ip::address& client, clock::time_point now) {
  auto [it, added] = table_.try_emplace(client);
  if (added) {
    it->second.tokens = cfg_.handshake_burst;
    it->second.refilled = now;
  } else {
    refill(it->second, now);
  }
  return it->second;
}

void client_limits::refill(entry& e, clock::time_point now) const {
  if (now <= e.refilled)
    return;
  std::chrono::duration<double> elapsed = now - e.refilled;
  e.tokens = std::min(cfg_.handshake_burst, e.tokens + elapsed.count() * cfg_.handshakes_per_second);
  e.refilled = now;
}

bool client_limits::removable(const entry& e) const {
  return e.connections == 0 &&
         (cfg_.handshakes_per_second <= 0 || e.tokens >= cfg_.handshake_burst);
}

void client_limits::sweep(clock::time_point now) {
  // Addresses that only spent handshake tokens have no connection whose end would remove them.
  if (now < next_sweep_)
    return;
  next_sweep_ = now + sweep_interval;
  for (auto it = table_.begin(); it != table_.end();) {
    refill(it->second, now);
    if (removable(it->second))
      it = table_.erase(it);
    else
      ++it;
  }
}

// -- the file-descriptor limit -------------------------------------------------------------------

std::size_t raise_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      lim = raised;
  }
  if (lim.rlim_cur == RLIM_INFINITY)
    return 1 << 20;
  return static_cast<std::size_t>(lim.rlim_cur);
}

std::size_t connection_limit(std::size_t configured, std::size_t file_limit,
                             std::size_t answer_reserve) {
  auto reserved = process_reserve + answer_reserve;
  auto possible = file_limit > reserved ? file_limit - reserved : 1;
  if (configured == 0)
    return possible;
  return std::min(configured, possible);
}

} // namespace parley::net

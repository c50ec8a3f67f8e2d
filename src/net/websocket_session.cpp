#include "net/websocket_session.hpp"

#include "net/error_filter.hpp"

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/post.hpp>

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <exception>

namespace parley::net {

namespace asio = boost::asio;

namespace {

// An incomplete frame this large keeps its buffer between reads; a larger one gives it back.
constexpr std::size_t kept_partial_bytes = 1024;

/// Allocates exactly what is asked for. Asio otherwise recycles its thread's last freed handler
/// block, which after the HTTP upgrade is Beast's 600-byte read operation: every idle connection
/// would keep one for its ~100-byte wait (measured with heaptrack; bench/README.md).
template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const exact_allocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const exact_allocator<U>&) const noexcept { return false; }
};

} // namespace

websocket_session::websocket_session(socket_type&& socket, io_loop& loop, server_context_ptr ctx,
                                     connection_slot slot)
  : slot_(std::move(slot)),
    socket_(std::move(socket)),
    loop_(loop),
    ctx_(std::move(ctx)),
    sink_(std::make_shared<connection_sink>(
      outbound_limits{ctx_->cfg.connection.queue_soft_bytes, ctx_->cfg.connection.queue_hard_bytes},
      loop.wakes())),
    writer_(socket_, *sink_, loop),
    parser_(ctx_->cfg.connection.max_frame_bytes) {
  // nop
}

websocket_session::~websocket_session() {
  // Reached without a read error only when the loop is torn down with this connection still
  // registered; the session actor must still learn that its connection is gone.
  notify_disconnect();
  sink_->finish();
  loop_.remove(this);
}

void websocket_session::start(std::optional<std::string> requested_name,
                              std::string_view early_bytes) {
  loop_.add(this);
  sink_->attach(weak_from_this());
  last_heard_ = clock_type::now();
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  start_session(std::move(requested_name));
  if (ctx_->stopping)
    sink_->close(close_code::going_away, "server shutting down");  // missed the shutdown sweep
  if (!early_bytes.empty()) {
    std::string early{early_bytes};
    consume(early.data(), early.size());
  }
  wait_readable();
}

void websocket_session::start_session(std::optional<std::string> requested_name) {
  if (requested_name && !protocol::is_valid_user_name(*requested_name)) {
    protocol::error_event ev{protocol::error_code::invalid_name,
                             "name must be 1-32 characters of A-Z, a-z, 0-9, '_', '.', '-'",
                             std::nullopt};
    sink_->push(make_frame(protocol::encode(ev)), frame_priority::essential);
    sink_->close(close_code::invalid_name, "invalid name");
    return;
  }
  try {
    session_ = ctx_->spawn(sink_, requested_name ? std::move(*requested_name) : std::string{});
  } catch (const std::exception& e) {
    spdlog::error("websocket_session failed to spawn a session: {}", e.what());
  } catch (...) {
    spdlog::error("websocket_session failed to spawn a session");
  }
  if (!session_)
    sink_->close(close_code::internal_error, "internal error");
}

// -- reading ----------------------------------------------------------------------------------------

void websocket_session::wait_readable() {
  socket_.async_wait(socket_type::wait_read,
                     asio::bind_allocator(exact_allocator<void>{},
                                          [self = shared_from_this()](boost::system::error_code ec) {
                                            self->on_readable(ec);
                                          }));
}

void websocket_session::on_readable(boost::system::error_code ec) {
  if (ec)
    return end_reading(ec);
  auto& buffer = loop_.read_buffer();
  auto n = socket_.read_some(asio::buffer(buffer), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again)
    return wait_readable();
  if (ec)
    return end_reading(ec);
  last_heard_ = clock_type::now();
  ping_sent_ = false;
  consume(buffer.data(), n);
  if (writer_.phase() == connection_phase::closed)
    return;
  if (n < buffer.size())
    return wait_readable();
  // The buffer filled up, so more may be waiting; let the loop's other connections go first.
  asio::post(loop_.context(), [self = shared_from_this()] { self->on_readable({}); });
}

void websocket_session::consume(char* data, std::size_t size) {
  if (parser_.done())
    return;  // after a close or a failure, the rest is read only to reach the end of the stream
  if (partial_.empty()) {
    auto used = parser_.parse(data, size, *this);
    if (used < size)
      partial_.assign(data + used, size - used);
  } else {
    partial_.append(data, size);
    auto used = parser_.parse(partial_.data(), partial_.size(), *this);
    partial_.erase(0, used);
    if (partial_.empty() && partial_.capacity() > kept_partial_bytes)
      std::string{}.swap(partial_);
  }
  parser_.shrink();
  if (flush_needed_) {
    flush_needed_ = false;
    flush();
  }
}

void websocket_session::end_reading(boost::system::error_code ec) {
  if (ec && !is_expected_error(ec))
    spdlog::debug("websocket_session failed to read: {}", ec.message());
  notify_disconnect();
  writer_.abort();
  std::string{}.swap(partial_);
}

void websocket_session::notify_disconnect() {
  if (disconnected_ || !session_)
    return;
  disconnected_ = true;
  caf::anon_send(session_, disconnect_atom::value);
}

void websocket_session::deliver(protocol::inbound in) {
  // Without a session (invalid name, failed spawn) the connection only waits for its close.
  if (session_ && !disconnected_)
    caf::anon_send(session_, inbound_atom::value, std::move(in));
}

// -- frame_events -----------------------------------------------------------------------------------

void websocket_session::on_text(std::string_view message) {
  deliver(protocol::decode(message, ctx_->limits));
}

void websocket_session::on_binary() {
  deliver(protocol::binary_frame_error());
}

void websocket_session::on_ping(std::string_view payload) {
  if (sink_->push_control(opcode::pong, make_frame(std::string{payload})))
    flush_needed_ = true;
}

void websocket_session::on_pong() {
  // nop: hearing anything at all already counted as activity
}

void websocket_session::on_close(uint16_t code, std::string_view) {
  notify_disconnect();
  writer_.peer_closed(code, shared_from_this());
}

void websocket_session::on_failure(uint16_t code, std::string_view why) {
  spdlog::debug("websocket_session closes a connection that broke the protocol: {}", why);
  notify_disconnect();
  writer_.fail(code, why, shared_from_this());
}

// -- writing and deadlines --------------------------------------------------------------------------

void websocket_session::flush() {
  writer_.flush(shared_from_this());
}

void websocket_session::check_deadlines(clock_type::time_point now) {
  writer_.check_deadlines(now);
  if (writer_.phase() != connection_phase::open)
    return;
  const auto& limits = loop_.deadlines();
  auto silent = now - last_heard_;
  if (silent > limits.idle_timeout) {
    spdlog::debug("websocket_session drops a peer silent for {} s",
                  std::chrono::duration_cast<std::chrono::seconds>(silent).count());
    notify_disconnect();
    writer_.abort();
    return;
  }
  if (silent > limits.idle_timeout / 2 && !ping_sent_) {
    ping_sent_ = true;
    if (sink_->push_control(opcode::ping, frame{}))
      flush();
  }
}

} // namespace parley::net

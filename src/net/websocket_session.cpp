#include "net/websocket_session.hpp"

#include "metrics/server_metrics.hpp"
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

// A TLS connection's own read buffer. OpenSSL hands out a record in as many reads as it takes.
constexpr std::size_t tls_read_bytes = 8 * 1024;

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

template <class Stream>
websocket_session<Stream>::websocket_session(stream_type&& stream, io_loop& loop,
                                             server_context_ptr ctx, connection_slot slot,
                                             std::shared_ptr<const void> keep)
  : slot_(std::move(slot)),
    stream_(std::move(stream)),
    keep_(std::move(keep)),
    loop_(loop),
    ctx_(std::move(ctx)),
    sink_(std::make_shared<connection_sink>(
      outbound_limits{ctx_->cfg.connection.queue_soft_bytes, ctx_->cfg.connection.queue_hard_bytes},
      loop.wakes())),
    writer_(stream_, *sink_, loop),
    parser_(ctx_->cfg.connection.max_frame_bytes) {
  // nop
}

template <class Stream>
websocket_session<Stream>::~websocket_session() {
  // Reached without a read error only when the loop is torn down with this connection still
  // registered; the session actor must still learn that its connection is gone.
  notify_disconnect();
  if (spdlog::should_log(spdlog::level::debug)) {
    // Ours if we sent a close frame first (or for a broken protocol), else the peer's; 1006: the
    // connection ended without a close frame (idle, reset, write timeout).
    auto ours = failure_close_code_ != 0 ? failure_close_code_ : sink_->close_code();
    if (ours != 0)
      spdlog::debug("websocket from {} closed by the server with {}", client_, ours);
    else if (peer_close_code_ != 0)
      spdlog::debug("websocket from {} closed by the client with {}", client_, peer_close_code_);
    else
      spdlog::debug("websocket from {} ended without a close frame (1006)", client_);
  }
  sink_->finish();
  loop_.remove(this);
  if (started_) {
    auto& stats = metrics::server_metrics();
    stats.connections_open.sub();
    stats.connection_closed(writer_.close_code());
  }
}

template <class Stream>
void websocket_session<Stream>::start(std::optional<auth::identity> who,
                                      std::string_view early_bytes) {
  loop_.add(this);
  started_ = true;
  auto& stats = metrics::server_metrics();
  stats.connections_opened.inc();
  stats.connections_open.add();
  sink_->attach(this->weak_from_this());
  spdlog::debug("websocket from {} opened", client_);
  last_heard_ = clock_type::now();
  if constexpr (is_plain) {
    boost::system::error_code ec;
    stream_.non_blocking(true, ec);
  } else {
    tls_read_.resize(tls_read_bytes);
  }
  start_session(std::move(who));
  if (ctx_->stopping)
    sink_->close(close_code::going_away, "server shutting down");  // missed the shutdown sweep
  if (!early_bytes.empty()) {
    std::string early{early_bytes};
    consume(early.data(), early.size());
  }
  read_more();
}

template <class Stream>
void websocket_session<Stream>::start_session(std::optional<auth::identity> who) {
  // A verified token's user was checked by the verifier; an open-mode name is checked here.
  bool open_mode = !ctx_->verifier;
  if (open_mode && who && !protocol::is_valid_user_name(who->user)) {
    protocol::error_event ev{protocol::error_code::invalid_name,
                             "name must be 1-32 characters of A-Z, a-z, 0-9, '_', '.', '-'",
                             std::nullopt};
    sink_->push(make_frame(protocol::encode(ev)), frame_priority::essential);
    sink_->close(close_code::invalid_name, "invalid name");
    return;
  }
  if (auto client = slot_.client())
    sink_->set_client_address(client->to_string());
  try {
    session_ = ctx_->spawn(sink_, std::move(who));
  } catch (const std::exception& e) {
    spdlog::error("websocket_session failed to spawn a session: {}", e.what());
  } catch (...) {
    spdlog::error("websocket_session failed to spawn a session");
  }
  if (!session_)
    sink_->close(close_code::internal_error, "internal error");
}

// -- reading ----------------------------------------------------------------------------------------

template <class Stream>
void websocket_session<Stream>::read_more() {
  if (writer_.phase() == connection_phase::closed)
    return;
  if (parser_.paused()) {
    // The session actor is behind: leave the bytes in the socket, so TCP holds the client back.
    // The sink wakes this connection (flush) once the actor has caught up.
    reading_paused_ = true;
    hold_ = this->shared_from_this();
    return;
  }
  if constexpr (is_plain) {
    wait_readable();
  } else {
    stream_.async_read_some(asio::buffer(tls_read_),
                            [self = this->shared_from_this()](boost::system::error_code ec,
                                                              std::size_t n) { self->on_read(ec, n); });
  }
}

template <class Stream>
void websocket_session<Stream>::wait_readable() {
  if constexpr (is_plain) {
    stream_.async_wait(Stream::wait_read,
                       asio::bind_allocator(exact_allocator<void>{},
                                            [self = this->shared_from_this()](
                                              boost::system::error_code ec) { self->on_readable(ec); }));
  }
}

template <class Stream>
void websocket_session<Stream>::on_readable(boost::system::error_code ec) {
  if constexpr (is_plain) {
    if (ec)
      return end_reading(ec);
    auto& buffer = loop_.read_buffer();
    auto n = stream_.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again)
      return wait_readable();
    if (ec)
      return end_reading(ec);
    last_heard_ = clock_type::now();
    ping_sent_ = false;
    consume(buffer.data(), n);
    if (n < buffer.size() || parser_.paused())
      return read_more();
    if (writer_.phase() == connection_phase::closed)
      return;
    // The buffer filled up, so more may be waiting; let the loop's other connections go first.
    asio::post(loop_.context(), [self = this->shared_from_this()] { self->on_readable({}); });
  }
}

template <class Stream>
void websocket_session<Stream>::on_read(boost::system::error_code ec, std::size_t n) {
  if (ec)
    return end_reading(ec);
  last_heard_ = clock_type::now();
  ping_sent_ = false;
  consume(tls_read_.data(), n);
  read_more();
}

template <class Stream>
void websocket_session<Stream>::consume(char* data, std::size_t size) {
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

template <class Stream>
void websocket_session<Stream>::end_reading(boost::system::error_code ec) {
  if (ec && !is_expected_error(ec))
    spdlog::debug("websocket_session failed to read: {}", ec.message());
  notify_disconnect();
  writer_.abort();
  std::string{}.swap(partial_);
}

template <class Stream>
void websocket_session<Stream>::notify_disconnect() {
  if (disconnected_ || !session_)
    return;
  disconnected_ = true;
  caf::anon_send(session_, disconnect_atom::value);
}

template <class Stream>
void websocket_session<Stream>::deliver(protocol::inbound in) {
  // Without a session (invalid name, failed spawn) the connection only waits for its close.
  if (!session_ || disconnected_)
    return;
  caf::anon_send(session_, inbound_atom::value, std::move(in));
  if (!sink_->count_inbound())
    parser_.pause();
}

// -- frame_events -----------------------------------------------------------------------------------

template <class Stream>
void websocket_session<Stream>::on_text(std::string_view message) {
  deliver(protocol::decode(message, ctx_->limits));
}

template <class Stream>
void websocket_session<Stream>::on_binary() {
  deliver(protocol::binary_frame_error());
}

template <class Stream>
void websocket_session<Stream>::on_ping(std::string_view payload) {
  if (sink_->push_control(opcode::pong, make_frame(std::string{payload})))
    flush_needed_ = true;
}

template <class Stream>
void websocket_session<Stream>::on_pong() {
  // nop: hearing anything at all already counted as activity
}

template <class Stream>
void websocket_session<Stream>::on_close(uint16_t code, std::string_view) {
  if (peer_close_code_ == 0)
    peer_close_code_ = code;
  notify_disconnect();
  writer_.peer_closed(code, this->shared_from_this());
}

template <class Stream>
void websocket_session<Stream>::on_failure(uint16_t code, std::string_view why) {
  spdlog::debug("websocket_session closes a connection that broke the protocol: {}", why);
  ctx_->bad_frames->count(std::to_string(code));
  if (failure_close_code_ == 0)
    failure_close_code_ = code;
  notify_disconnect();
  writer_.fail(code, why, this->shared_from_this());
}

// -- writing and deadlines --------------------------------------------------------------------------

template <class Stream>
void websocket_session<Stream>::flush() {
  if (reading_paused_ && !sink_->inbound_paused()) {
    // Woken because the session actor caught up: parse what was left, then read again.
    reading_paused_ = false;
    parser_.resume();
    consume(nullptr, 0);
    read_more();
    // A read is pending again and holds the connection. (Had it ended meanwhile, the sweep lets go.)
    if (!reading_paused_ && writer_.phase() != connection_phase::closed)
      hold_.reset();
  }
  writer_.flush(this->shared_from_this());
}

template <class Stream>
void websocket_session<Stream>::check_deadlines(clock_type::time_point now) {
  if (hold_ && writer_.phase() == connection_phase::closed) {
    // Ended while paused: let go after the sweep, which must not see the list change under it.
    asio::post(loop_.context(), [last = std::move(hold_)] {});
    return;
  }
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

template <class Stream>
void websocket_session<Stream>::close(uint16_t code, std::string_view reason) {
  sink_->close(code, reason);
}

template <class Stream>
bool websocket_session<Stream>::closing() const {
  return !sink_->accepting_data();
}

template <class Stream>
void websocket_session<Stream>::release() {
  hold_.reset();
}

template class websocket_session<boost::asio::ip::tcp::socket>;
template class websocket_session<tls_stream>;

} // namespace parley::net

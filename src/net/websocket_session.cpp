#include "net/websocket_session.hpp"

#include "net/error_filter.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string_view>

namespace parley::net {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace asio = boost::asio;

namespace {

// Past these sizes the per-connection buffers are given back once the connection goes quiet.
constexpr std::size_t kept_message_bytes = 4096;
constexpr std::size_t kept_batch_items = 64;

// RFC 6455 allows 123 bytes of close reason.
constexpr std::size_t max_close_reason = 123;

} // namespace

websocket_session::websocket_session(socket_type&& socket, server_context_ptr ctx)
  : ctx_(std::move(ctx)),
    ws_(std::move(socket), static_cast<control_path&>(*this)),
    sink_(std::make_shared<connection_sink>(outbound_limits{
      ctx_->cfg.connection.queue_soft_bytes, ctx_->cfg.connection.queue_hard_bytes})),
    write_timer_(ws_.get_executor()) {
  // nop
}

websocket_session::~websocket_session() {
  // Reached without a read error only when the io_context is torn down with this connection
  // still registered; the session actor must still learn that its connection is gone.
  notify_disconnect();
  sink_->detach();
  if (registry_id_ != 0)
    ctx_->registry->remove(registry_id_);
}

// -- inbound --------------------------------------------------------------------------------------

void websocket_session::run(const beast::http::request<beast::http::string_body>& req,
                            std::optional<std::string> requested_name) {
  registry_id_ = ctx_->registry->add(weak_from_this());
  sink_->attach(weak_from_this());
  requested_name_ = std::move(requested_name);
  const auto& conn = ctx_->cfg.connection;
  websocket::stream_base::timeout opt;
  opt.handshake_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
    conn.handshake_timeout);
  opt.idle_timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
    conn.idle_timeout);
  opt.keep_alive_pings = true;
  ws_.set_option(opt);
  ws_.read_message_max(conn.max_frame_bytes);
  ws_.async_accept(req, beast::bind_front_handler(&websocket_session::on_accept,
                                                  shared_from_this()));
}

void websocket_session::on_accept(beast::error_code ec) {
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::info("websocket_session failed to accept: {}", ec.message());
    close_socket();
    return;
  }
  open_ = true;
  if (closing_) {
    // Shutdown asked for a close while the handshake was still running.
    close_socket();
    return;
  }
  start_session();
  do_read();
}

void websocket_session::start_session() {
  if (requested_name_ && !protocol::is_valid_user_name(*requested_name_)) {
    protocol::error_event ev{protocol::error_code::invalid_name,
                             "name must be 1-32 characters of A-Z, a-z, 0-9, '_', '.', '-'",
                             std::nullopt};
    sink_->push(make_frame(protocol::encode(ev)), frame_priority::essential);
    sink_->close(close_code::invalid_name, "invalid name");
    return;
  }
  try {
    session_ = ctx_->spawn(sink_, requested_name_ ? std::move(*requested_name_) : std::string{});
  } catch (const std::exception& e) {
    spdlog::error("websocket_session failed to spawn a session: {}", e.what());
  } catch (...) {
    spdlog::error("websocket_session failed to spawn a session");
  }
  requested_name_.reset();
  if (!session_)
    sink_->close(close_code::internal_error, "internal error");
}

void websocket_session::do_read() {
  ws_.async_read_some(asio::buffer(chunk_),
                      beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
}

void websocket_session::on_read(beast::error_code ec, std::size_t n) {
  if (ec) {
    on_read_end(ec);
    return;
  }
  bool done = ws_.is_message_done();
  bool binary = ws_.got_binary();
  if (!binary && !(done && message_.empty()))
    message_.append(chunk_.data(), n);
  if (done) {
    if (binary) {
      deliver(protocol::binary_frame_error());
    } else if (message_.empty()) {
      deliver(protocol::decode(std::string_view{chunk_.data(), n}, ctx_->limits));
    } else {
      deliver(protocol::decode(message_, ctx_->limits));
      message_.clear();
      if (message_.capacity() > kept_message_bytes)
        std::string{}.swap(message_);
    }
  }
  do_read();
}

void websocket_session::deliver(protocol::inbound in) {
  // Without a session (invalid name, failed spawn) the connection only waits for its close.
  if (session_)
    caf::anon_send(session_, inbound_atom::value, std::move(in));
}

void websocket_session::on_read_end(beast::error_code ec) {
  if (!is_expected_error(ec))
    spdlog::debug("websocket_session failed to read: {}", ec.message());
  sink_->close_data();
  notify_disconnect();
  message_ = std::string{};
  if (teardown_requested_)
    drain(); // a close handshake ended: let the writer flush, then wait for the peer's FIN
  else
    close_socket();
}

void websocket_session::drain() {
  if (!socket().is_open())
    return;
  socket().async_read_some(asio::buffer(chunk_), beast::bind_front_handler(
                                                   &websocket_session::on_drain, shared_from_this()));
}

void websocket_session::on_drain(beast::error_code ec, std::size_t) {
  // Reading to EOF before closing keeps the kernel from answering unread bytes with a reset that
  // could overtake our close frame at the peer.
  if (ec)
    close_socket();
  else
    drain();
}

void websocket_session::notify_disconnect() {
  if (disconnected_ || !session_)
    return;
  disconnected_ = true;
  caf::anon_send(session_, disconnect_atom::value);
}

// -- outbound -------------------------------------------------------------------------------------

void websocket_session::schedule_flush(std::shared_ptr<websocket_session> self) {
  auto ex = self->ws_.get_executor();
  asio::post(ex, beast::bind_front_handler(&websocket_session::flush, std::move(self)));
}

void websocket_session::write_control(frame bytes) {
  if (sink_->push_control(std::move(bytes)))
    schedule_flush(shared_from_this());
}

void websocket_session::flush() {
  if (!write_in_flight_)
    start_write();
}

void websocket_session::start_write() {
  batch_.clear();
  if (!sink_->take(batch_)) {
    if (batch_.capacity() > kept_batch_items) {
      std::vector<outbound_item>{}.swap(batch_);
      std::vector<asio::const_buffer>{}.swap(gather_);
    }
    on_idle();
    return;
  }
  if (!socket().is_open()) {
    batch_.clear();
    sink_->release_batch();
    sink_->finish();
    return;
  }
  gather_.clear();
  gather_.reserve(batch_.size() * 2);
  for (const auto& item : batch_) {
    if (!item.control)
      gather_.emplace_back(item.header.bytes.data(), item.header.size);
    gather_.emplace_back(item.payload->data(), item.payload->size());
  }
  write_in_flight_ = true;
  write_timer_.expires_after(ctx_->cfg.connection.write_timeout);
  write_timer_.async_wait(
    beast::bind_front_handler(&websocket_session::on_write_timeout, shared_from_this()));
  asio::async_write(socket(), gather_,
                    beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
}

void websocket_session::on_write(beast::error_code ec, std::size_t) {
  write_in_flight_ = false;
  write_timer_.cancel();
  batch_.clear();
  sink_->release_batch();
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::debug("websocket_session failed to write: {}", ec.message());
    sink_->finish();
    close_socket();
    return;
  }
  start_write();
}

void websocket_session::on_write_timeout(beast::error_code ec) {
  // A wait that completed just as its write did and the timer was re-armed is stale.
  if (ec || !write_in_flight_ || write_timer_.expiry() > std::chrono::steady_clock::now())
    return;
  spdlog::info("websocket_session failed to write: timed out");
  sink_->finish();
  close_socket();
}

void websocket_session::on_idle() {
  if (teardown_requested_ && !send_shut_ && socket().is_open()) {
    send_shut_ = true;
    beast::error_code ec;
    socket().shutdown(socket_type::shutdown_send, ec);
  }
}

void websocket_session::request_teardown() {
  teardown_requested_ = true;
  arm_close_deadline();
  if (!sink_->busy())
    on_idle();
}

// -- closing --------------------------------------------------------------------------------------

void websocket_session::schedule_close(std::shared_ptr<websocket_session> self, uint16_t code,
                                       std::string reason) {
  auto ex = self->ws_.get_executor();
  asio::post(ex, [self = std::move(self), code, reason = std::move(reason)] {
    self->begin_close(code, reason);
  });
}

void websocket_session::begin_close(uint16_t code, const std::string& reason) {
  if (closing_)
    return;
  closing_ = true;
  arm_close_deadline();
  if (!open_ || !socket().is_open())
    return; // on_accept closes a connection whose handshake is still running
  if (code == close_code::slow_consumer)
    spdlog::info("websocket_session closed a slow consumer ({} frames dropped before)",
                 sink_->dropped());
  websocket::close_reason cr{static_cast<websocket::close_code>(code), std::string_view{reason}.substr(
                                     0, std::min(reason.size(), max_close_reason))};
  ws_.async_close(cr, beast::bind_front_handler(&websocket_session::on_close, shared_from_this()));
}

void websocket_session::on_close(beast::error_code ec) {
  if (ec && !is_expected_error(ec))
    spdlog::debug("websocket_session failed to close: {}", ec.message());
}

void websocket_session::arm_close_deadline() {
  if (close_timer_ || !socket().is_open())
    return;
  close_timer_ = std::make_unique<asio::steady_timer>(ws_.get_executor());
  close_timer_->expires_after(ctx_->cfg.connection.write_timeout);
  close_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec)
      self->close_socket();
  });
}

void websocket_session::close_socket() {
  beast::error_code ec;
  if (socket().is_open()) {
    socket().shutdown(socket_type::shutdown_both, ec);
    socket().close(ec);
  }
  write_timer_.cancel();
  if (close_timer_)
    close_timer_->cancel();
}

} // namespace parley::net

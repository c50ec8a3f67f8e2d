#include "net/http_session.hpp"

#include "net/client_address.hpp"
#include "net/error_filter.hpp"
#include "net/tls_context.hpp"
#include "net/host_check.hpp"
#include "net/static_files.hpp"
#include "net/upgrade_policy.hpp"
#include "net/websocket_handshake.hpp"
#include "net/websocket_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/version.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <utility>

namespace parley::net {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace asio = boost::asio;

namespace {

// Requests are small GETs; anything bigger is not for us.
constexpr std::size_t header_limit = 8 * 1024;
constexpr std::size_t body_limit = 16 * 1024;

constexpr std::string_view server_name = "parley";

// After an error answer the client's unread request bytes are read and dropped for a moment:
// closing a socket with unread input resets it, which can destroy the answer before it is read.
constexpr auto linger_timeout = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 64 * 1024;

// Errors end the connection (a confused or hostile client gets no second request), except 404:
// a page asking for a missing favicon keeps its connection.
bool keeps_connection(http::status status) {
  return static_cast<unsigned>(status) < 400 || status == http::status::not_found;
}

template <class Request>
http::response<http::string_body> text_response(const Request& req, http::status status,
                                                std::string body) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, server_name);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(req.keep_alive() && keeps_connection(status));
  if (req.method() == http::verb::head) {
    res.content_length(body.size());
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  return res;
}

} // namespace

http_session::http_session(asio::ip::tcp::socket&& socket, io_loop& loop, server_context_ptr ctx,
                           connection_slot slot)
  : slot_(std::move(slot)),
    stream_(std::in_place_type<beast::tcp_stream>, std::move(socket)),
    request_timer_(tcp().get_executor()),
    loop_(loop),
    ctx_(std::move(ctx)) {
  if (ctx_->tls)
    tls_ = ctx_->tls->current();
}

beast::tcp_stream& http_session::tcp() noexcept {
  return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                    stream_);
}

void http_session::run() {
  auto start = tls_ ? &http_session::detect_tls : &http_session::do_read;
  asio::dispatch(tcp().get_executor(), beast::bind_front_handler(start, shared_from_this()));
}

// -- TLS ----------------------------------------------------------------------------------------------

void http_session::detect_tls() {
  // The TLS handshake gets handshake_timeout; the request after it gets its own (do_read).
  tcp().expires_after(ctx_->cfg.connection.handshake_timeout);
  beast::async_detect_ssl(tcp(), buffer_,
                          beast::bind_front_handler(&http_session::on_detected, shared_from_this()));
}

void http_session::on_detected(beast::error_code ec, bool is_tls) {
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::debug("http_session failed to detect TLS: {}", ec.message());
    return do_close();
  }
  if (!is_tls) {
    ctx_->refusals->count("plaintext_on_tls");
    return refuse_plaintext();
  }
  auto plain = std::move(std::get<beast::tcp_stream>(stream_));
  auto& tls = stream_.emplace<tls_stream>(std::move(plain), *tls_);
  // The bytes the detection read are the start of the client's hello.
  tls.async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                      beast::bind_front_handler(&http_session::on_tls_handshake, shared_from_this()));
}

void http_session::refuse_plaintext() {
  // A plain HTTP client (or ws://) on the TLS port gets an answer it can read, then the close.
  static const std::string body = "this port speaks TLS: use https:// or wss://\n";
  static const std::string answer = "HTTP/1.1 400 Bad Request\r\n"
                                    "Server: parley\r\n"
                                    "Content-Type: text/plain; charset=utf-8\r\n"
                                    "Connection: close\r\n"
                                    "Content-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body;
  tcp().expires_after(ctx_->cfg.connection.write_timeout);
  asio::async_write(tcp(), asio::buffer(answer),
                    [self = shared_from_this()](beast::error_code, std::size_t) { self->do_close(); });
}

void http_session::on_tls_handshake(beast::error_code ec, std::size_t used) {
  if (ec) {
    // Old protocol versions, weak ciphers, scanners: counted, not logged one by one.
    ctx_->refusals->count("tls_handshake");
    return do_close();
  }
  buffer_.consume(used);
  do_read();
}

// -- HTTP -----------------------------------------------------------------------------------------------

void http_session::do_read() {
  parser_.emplace();
  parser_->header_limit(header_limit);
  parser_->body_limit(body_limit);
  // Not the stream's own deadline: that one closes the socket, and a late request gets a 408.
  tcp().expires_never();
  reading_ = true;
  timed_out_ = false;
  request_timer_.expires_after(ctx_->cfg.connection.handshake_timeout);
  request_timer_.async_wait(
    beast::bind_front_handler(&http_session::on_request_timeout, shared_from_this()));
  with_stream([&](auto& stream) {
    http::async_read(stream, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  });
}

void http_session::on_request_timeout(beast::error_code ec) {
  // Also reached when the read completed just before: only a read still waiting is cut short.
  if (ec || !reading_)
    return;
  timed_out_ = true;
  tcp().cancel();
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  reading_ = false;
  request_timer_.cancel();
  if (timed_out_ && ec)
    return refuse(refusal_response(request_timeout_refusal()), request_timeout_refusal().reason);
  if (ec) {
    // The parser fills in the method and target as soon as the request line is complete.
    bool request_line_read = !parser_->get().target().empty();
    if (auto refusal = refusal_for_read_error(ec, request_line_read))
      return refuse(refusal_response(*refusal), refusal->reason);
    if (!is_expected_error(ec))
      spdlog::debug("http_session failed to read: {}", ec.message());
    do_close();
    return;
  }
  auto req = parser_->release();
  if (admit(req))
    handle(std::move(req));
}

bool http_session::admit(const request& req) {
  auto host = req[http::field::host];
  if (!host_allowed(std::string_view{host.data(), host.size()}, ctx_->cfg.server.allowed_hosts)) {
    refuse(text_response(req, http::status::misdirected_request, "host not allowed\n"), "host");
    return false;
  }
  beast::error_code ec;
  auto peer = tcp().socket().remote_endpoint(ec);
  if (!ec && ctx_->proxies.trusts(peer.address())) {
    // Behind our proxy every request may come from another client: count it for the one it names.
    std::vector<std::string_view> forwarded_for;
    for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it)
      forwarded_for.emplace_back(it->value().data(), it->value().size());
    slot_.assign(limit_key(client_address(peer.address(), forwarded_for, ctx_->proxies)));
  }
  if (!slot_.within_address_limit()) {
    auto res = text_response(req, http::status::too_many_requests,
                             "too many connections from your address\n");
    res.set(http::field::retry_after, "1");
    refuse(std::move(res), "too_many_connections");
    return false;
  }
  return true;
}

template <class Response>
void http_session::refuse(Response&& res, std::string_view reason) {
  ctx_->refusals->count(reason);
  res.keep_alive(false);
  send(std::forward<Response>(res));
}

void http_session::handle(request&& req) {
  auto path = target_path(req.target());
  if (websocket::is_upgrade(req)) {
    if (path != "/ws")
      return send(text_response(req, http::status::not_found, "not found\n"));
    return upgrade(std::move(req));
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = text_response(req, http::status::method_not_allowed, "method not allowed\n");
    res.set(http::field::allow, path == "/ws" ? "GET" : "GET, HEAD");
    return refuse(std::move(res), "method");
  }
  if (path == "/healthz")
    return send(text_response(req, http::status::ok, "ok"));
  if (path == "/ws") {
    auto res = text_response(req, http::status::upgrade_required, "websocket upgrade required\n");
    res.set(http::field::upgrade, "websocket");
    return refuse(std::move(res), "upgrade_required");
  }

  auto file = resolve_static_path(ctx_->cfg.server.web_root, req.target());
  if (file.status == resolve_status::bad_request)
    return refuse(text_response(req, http::status::bad_request, "bad request\n"), "bad_request");
  http::file_body::value_type body;
  beast::error_code ec;
  if (file.status == resolve_status::ok)
    body.open(file.path.c_str(), beast::file_mode::scan, ec);
  if (file.status != resolve_status::ok || ec)
    return send(text_response(req, http::status::not_found, "not found\n"));

  auto size = body.size();
  auto type = mime_type(file.path);
  if (req.method() == http::verb::head) {
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::server, server_name);
    res.set(http::field::content_type, type);
    res.content_length(size);
    res.keep_alive(req.keep_alive());
    return send(std::move(res));
  }
  http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(body)),
                                      std::make_tuple(http::status::ok, req.version())};
  res.set(http::field::server, server_name);
  res.set(http::field::content_type, type);
  res.content_length(size);
  res.keep_alive(req.keep_alive());
  send(std::move(res));
}

void http_session::upgrade(request&& req) {
  std::optional<std::string_view> origin;
  if (auto it = req.find(http::field::origin); it != req.end())
    origin = it->value();
  if (!origin_allowed(origin, req[http::field::host], ctx_->cfg.server.allowed_origins))
    return refuse(text_response(req, http::status::forbidden, "origin not allowed\n"), "origin");
  if (ctx_->stopping) {
    // The registry has already been swept for the shutdown close: a new connection would linger.
    return refuse(text_response(req, http::status::service_unavailable, "shutting down\n"),
                  "shutting_down");
  }
  if (ctx_->draining) {
    // Another node (or this one after its restart) takes the client; the drain paces the rest.
    auto res = text_response(req, http::status::service_unavailable, "server draining\n");
    res.set(http::field::retry_after, "5");
    return refuse(std::move(res), "draining");
  }
  if (!slot_.within_server_limit()) {
    auto res = text_response(req, http::status::service_unavailable, "server full\n");
    res.set(http::field::retry_after, "5");
    return refuse(std::move(res), "server_full");
  }
  if (auto client = slot_.client()) {
    if (auto wait = ctx_->clients->take_handshake(*client); wait > 0) {
      auto res = text_response(req, http::status::too_many_requests, "too many handshakes\n");
      res.set(http::field::retry_after, std::to_string(wait));
      return refuse(std::move(res), "rate_limited");
    }
  }
  if (auto problem = check_handshake(req)) {
    auto res = text_response(req, problem.status, std::move(problem.message));
    if (problem.status == http::status::upgrade_required)
      res.set(http::field::sec_websocket_version, "13");
    return refuse(std::move(res), "bad_handshake");
  }
  auto offer = offered_subprotocols(req[http::field::sec_websocket_protocol]);
  if (offer.token && !offer.parley) {
    // We may only select a protocol the client offered, and never the token itself.
    return refuse(text_response(req, http::status::bad_request,
                                "offer the subprotocol parley.v1 together with the token\n"),
                  "bad_handshake");
  }
  std::optional<auth::identity> who;
  if (ctx_->verifier) {
    // jwt mode: a token offered here is checked before the upgrade; without one the client
    // signs in with its first frame. ?name= means nothing here.
    if (offer.token) {
      auto result = ctx_->verifier->verify(*offer.token, auth::unix_now());
      if (!result) {
        auto res = text_response(req, http::status::unauthorized,
                                 std::string{"token refused: "} + auth::to_string(result.problem) + "\n");
        res.set(http::field::www_authenticate, "Bearer error=\"invalid_token\"");
        return refuse(std::move(res), "unauthenticated");
      }
      who = std::move(result.who);
    }
  } else if (auto name = query_param(req.target(), "name")) {
    // Open mode: the name as asked for (an empty one is refused after the upgrade); no name at
    // all means a guest name.
    who.emplace();
    who->user = std::move(*name);
  }
  auto res = std::make_shared<http::response<http::empty_body>>(switching_protocols(req));
  if (offer.parley)
    res->set(http::field::sec_websocket_protocol, parley_subprotocol);
  tcp().expires_after(ctx_->cfg.connection.write_timeout);
  with_stream([&](auto& stream) {
    http::async_write(stream, *res,
                      [self = shared_from_this(), res, who = std::move(who)](
                        beast::error_code ec, std::size_t) mutable {
                        self->on_upgraded(ec, std::move(who));
                      });
  });
}

void http_session::on_upgraded(beast::error_code ec, std::optional<auth::identity> who) {
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::debug("http_session failed to upgrade: {}", ec.message());
    do_close();
    return;
  }
  // From here on the connection's own deadlines apply (see io_loop's sweep).
  tcp().expires_never();
  // Whatever the client sent right behind its request is the start of its first frames.
  auto early = buffer_.data();
  std::string_view early_bytes{static_cast<const char*>(early.data()), early.size()};
  if (auto* plain = std::get_if<beast::tcp_stream>(&stream_)) {
    auto ws = std::make_shared<websocket_session<asio::ip::tcp::socket>>(
      plain->release_socket(), loop_, ctx_, std::move(slot_));
    ws->start(std::move(who), early_bytes);
  } else {
    auto ws = std::make_shared<websocket_session<tls_stream>>(
      std::move(std::get<tls_stream>(stream_)), loop_, ctx_, std::move(slot_), tls_);
    ws->start(std::move(who), early_bytes);
  }
}

template <class Response>
void http_session::send(Response&& res) {
  using response_type = std::decay_t<Response>;
  auto sp = std::make_shared<response_type>(std::forward<Response>(res));
  bool close = sp->need_eof();
  tcp().expires_after(ctx_->cfg.connection.write_timeout);
  with_stream([&](auto& stream) {
    http::async_write(stream, *sp,
                      [self = shared_from_this(), sp, close](beast::error_code ec, std::size_t n) {
                        self->on_write(close, ec, n);
                      });
  });
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t) {
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::debug("http_session failed to write: {}", ec.message());
    do_close();
    return;
  }
  if (close) {
    linger();
    return;
  }
  do_read();
}

void http_session::linger() {
  beast::error_code ec;
  tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec)
    return;
  buffer_.clear();
  tcp().expires_after(linger_timeout);
  tcp().async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&http_session::on_linger, shared_from_this()));
}

void http_session::on_linger(beast::error_code ec, std::size_t n) {
  lingered_bytes_ += n;
  // Ends (and the socket closes) at the client's EOF, an error, the deadline or the byte cap.
  if (ec || lingered_bytes_ > linger_bytes)
    return;
  tcp().async_read_some(buffer_.prepare(4096),
                          beast::bind_front_handler(&http_session::on_linger, shared_from_this()));
}

void http_session::do_close() {
  shutdown_send(tcp().socket());
}

} // namespace parley::net

#include "net/http_session.hpp"

#include "net/error_filter.hpp"
#include "net/tls_context.hpp"
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

template <class Request>
http::response<http::string_body> text_response(const Request& req, http::status status,
                                                std::string body) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, server_name);
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(req.keep_alive());
  if (req.method() == http::verb::head) {
    res.content_length(body.size());
  } else {
    res.body() = std::move(body);
    res.prepare_payload();
  }
  return res;
}

} // namespace

http_session::http_session(asio::ip::tcp::socket&& socket, io_loop& loop, server_context_ptr ctx)
  : stream_(std::in_place_type<beast::tcp_stream>, std::move(socket)),
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
  // One deadline covers the TLS handshake and the first request.
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
  if (!is_tls)
    return refuse_plaintext();
  auto plain = std::move(std::get<beast::tcp_stream>(stream_));
  auto& tls = stream_.emplace<tls_stream>(std::move(plain), *tls_);
  // The bytes the detection read are the start of the client's hello.
  tls.async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                      beast::bind_front_handler(&http_session::on_tls_handshake, shared_from_this()));
}

void http_session::refuse_plaintext() {
  // A plain HTTP client (or ws://) on the TLS port gets an answer it can read, then the close.
  static const std::string answer =
    "HTTP/1.1 400 Bad Request\r\n"
    "Server: parley\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Connection: close\r\n"
    "Content-Length: 45\r\n"  // the line below
    "\r\n"
    "this port speaks TLS: use https:// or wss://\n";
  tcp().expires_after(ctx_->cfg.connection.write_timeout);
  asio::async_write(tcp(), asio::buffer(answer),
                    [self = shared_from_this()](beast::error_code, std::size_t) { self->do_close(); });
}

void http_session::on_tls_handshake(beast::error_code ec, std::size_t used) {
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::debug("http_session failed the TLS handshake: {}", ec.message());
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
  tcp().expires_after(ctx_->cfg.connection.handshake_timeout);
  with_stream([&](auto& stream) {
    http::async_read(stream, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  });
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    if (!is_expected_error(ec))
      spdlog::debug("http_session failed to read: {}", ec.message());
    do_close();
    return;
  }
  handle(parser_->release());
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
    res.set(http::field::allow, "GET, HEAD");
    return send(std::move(res));
  }
  if (path == "/healthz")
    return send(text_response(req, http::status::ok, "ok"));
  if (path == "/ws")
    return send(text_response(req, http::status::upgrade_required, "websocket upgrade required\n"));

  auto file = resolve_static_path(ctx_->cfg.server.web_root, req.target());
  if (file.status == resolve_status::bad_request)
    return send(text_response(req, http::status::bad_request, "bad request\n"));
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
  if (!origin_allowed(origin, req[http::field::host], ctx_->cfg.server.allowed_origins)) {
    auto res = text_response(req, http::status::forbidden, "origin not allowed\n");
    res.keep_alive(false);
    return send(std::move(res));
  }
  if (ctx_->stopping) {
    // The registry has already been swept for the shutdown close: a new connection would linger.
    auto res = text_response(req, http::status::service_unavailable, "shutting down\n");
    res.keep_alive(false);
    return send(std::move(res));
  }
  if (auto problem = check_handshake(req)) {
    auto res = text_response(req, problem.status, std::move(problem.message));
    if (problem.status == http::status::upgrade_required)
      res.set(http::field::sec_websocket_version, "13");
    res.keep_alive(false);
    return send(std::move(res));
  }
  auto name = query_param(req.target(), "name");
  auto res = std::make_shared<http::response<http::empty_body>>(switching_protocols(req));
  tcp().expires_after(ctx_->cfg.connection.write_timeout);
  with_stream([&](auto& stream) {
    http::async_write(stream, *res,
                      [self = shared_from_this(), res, name = std::move(name)](
                        beast::error_code ec, std::size_t) mutable {
                        self->on_upgraded(ec, std::move(name));
                      });
  });
}

void http_session::on_upgraded(beast::error_code ec, std::optional<std::string> requested_name) {
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
    auto ws = std::make_shared<websocket_session<asio::ip::tcp::socket>>(plain->release_socket(),
                                                                          loop_, ctx_);
    ws->start(std::move(requested_name), early_bytes);
  } else {
    auto ws = std::make_shared<websocket_session<tls_stream>>(
      std::move(std::get<tls_stream>(stream_)), loop_, ctx_, tls_);
    ws->start(std::move(requested_name), early_bytes);
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
    do_close();
    return;
  }
  do_read();
}

void http_session::do_close() {
  beast::error_code ec;
  tcp().socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
}

} // namespace parley::net

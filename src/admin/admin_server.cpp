#include "admin/admin_server.hpp"

#include "admin/readiness.hpp"
#include "net/error_filter.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <thread>

namespace parley::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t header_limit = 8 * 1024;
constexpr std::string_view server_name = "parley-admin";
constexpr auto linger_timeout = std::chrono::seconds(2);
constexpr std::size_t linger_bytes = 64 * 1024;

/// What every connection of one admin listener shares.
struct shared_state {
  listener_options opts;
  std::shared_ptr<admin_api> api;
  /// Weak: answers from actors post through it while the listener exists, and a late answer
  /// after the end finds nothing (holding it strongly from here would make a cycle through the
  /// handlers queued in it).
  std::weak_ptr<asio::io_context> ioc;
  std::atomic<std::size_t> connections{0};
};

/// One HTTP connection to the admin listener. Everything runs on the listener's one thread; the
/// only thing that comes from elsewhere is an API answer, posted here.
class admin_connection : public std::enable_shared_from_this<admin_connection> {
public:
  admin_connection(tcp::socket&& socket, std::shared_ptr<shared_state> shared)
    : stream_(std::move(socket)), answer_timer_(stream_.get_executor()), shared_(std::move(shared)) {
    ++shared_->connections;
  }

  ~admin_connection() { --shared_->connections; }

  void run() { do_read(); }

private:
  using response = http::response<http::string_body>;

  void do_read() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(shared_->opts.max_body_bytes);
    // One deadline for the whole request; it also ends an idle keep-alive connection.
    stream_.expires_after(shared_->opts.request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&admin_connection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::body_limit)
      return refuse(413, "too_large", "the body is larger than "
                                        + std::to_string(shared_->opts.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return refuse(431, "too_large", "the request head is too large");
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || net::is_expected_error(ec))
      return close();
    if (ec) {
      // Unparseable HTTP gets an answer; a transport error just ends the connection.
      if (ec.category() == http::make_error_code(http::error::bad_method).category())
        return refuse(400, "bad_request", "malformed HTTP request");
      return close();
    }
    auto req = parser_->release();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    admin_request request;
    request.method = std::string{req.method_string()};
    request.target = std::string{req.target()};
    request.authorization = std::string{req[http::field::authorization]};
    request.body = std::move(req.body());
    spdlog::debug("admin {} {}", request.method, net_path(request.target));
    wait_for_answer(std::move(request));
  }

  /// Hands the request to the API. Its answer may come from an actor thread: it is posted back
  /// here, and a generation number makes a late answer (after the backstop timeout) a no-op.
  void wait_for_answer(admin_request request) {
    auto generation = ++generation_;
    answering_ = true;
    stream_.expires_never();  // the request is in; the answer timer takes over
    answer_timer_.expires_after(shared_->opts.answer_timeout);
    answer_timer_.async_wait([self = shared_from_this(), generation](beast::error_code ec) {
      if (!ec)
        self->on_answer(generation, error_response(503, "unavailable", "the server did not answer in time"));
    });
    std::weak_ptr<admin_connection> weak = shared_from_this();
    auto ioc = shared_->ioc;
    shared_->api->handle(request, [weak, ioc, generation](admin_response res) {
      auto context = ioc.lock();
      if (!context)
        return;  // the listener is gone
      asio::post(*context, [weak, generation, res = std::move(res)]() mutable {
        if (auto self = weak.lock())
          self->on_answer(generation, std::move(res));
      });
    });
  }

  void on_answer(uint64_t generation, admin_response res) {
    if (!answering_ || generation != generation_)
      return;
    answering_ = false;
    answer_timer_.cancel();
    write(std::move(res), !keep_alive_);
  }

  void refuse(unsigned status, std::string_view code, const std::string& message) {
    version_ = 11;
    head_ = false;
    write(error_response(status, code, message), true);
  }

  void write(admin_response res, bool close_after) {
    auto out = std::make_shared<response>(static_cast<http::status>(res.status), version_);
    out->set(http::field::server, server_name);
    out->set(http::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers)
      out->set(name, value);
    out->keep_alive(!close_after);
    if (head_) {
      out->content_length(res.body.size());
    } else {
      out->body() = std::move(res.body);
      out->prepare_payload();
    }
    stream_.expires_after(shared_->opts.request_timeout);
    http::async_write(stream_, *out,
                      [self = shared_from_this(), out, close_after](beast::error_code ec, std::size_t) {
                        self->on_write(ec, close_after);
                      });
  }

  void on_write(beast::error_code ec, bool close_after) {
    if (ec)
      return close();
    if (close_after)
      return linger();
    do_read();
  }

  /// After an answer that ends the connection, the client's unread bytes (say, the rest of a body
  /// too large to read) are read and dropped for a moment: closing a socket with unread input
  /// resets it, which can destroy the answer before the client reads it.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(linger_timeout);
    buffer_.clear();
    linger_more();
  }

  void linger_more() {
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > linger_bytes)
        return self->close();
      self->linger_more();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  /// The path without the query, for the debug log (queries are not used, but could hold anything).
  static std::string net_path(const std::string& target) { return target.substr(0, target.find('?')); }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  asio::steady_timer answer_timer_;
  std::shared_ptr<shared_state> shared_;
  uint64_t generation_ = 0;
  bool answering_ = false;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_ = false;
  std::size_t lingered_ = 0;
};

} // namespace

struct admin_server::impl {
  std::shared_ptr<asio::io_context> ioc = std::make_shared<asio::io_context>(1);
  std::shared_ptr<shared_state> shared = std::make_shared<shared_state>();
  std::unique_ptr<tcp::acceptor> acceptor;
  std::thread thread;
  uint16_t port = 0;
  bool running = false;

  void accept() {
    acceptor->async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open())
        return;
      if (!ec) {
        if (shared->connections >= shared->opts.max_connections) {
          beast::error_code ignored;
          socket.close(ignored);  // operators need a handful; more is a leak or an attack
        } else {
          std::make_shared<admin_connection>(std::move(socket), shared)->run();
        }
      } else {
        spdlog::debug("admin listener failed to accept: {}", ec.message());
      }
      accept();
    });
  }
};

admin_server::admin_server(listener_options opts, std::shared_ptr<admin_api> api)
  : impl_(std::make_unique<impl>()) {
  impl_->shared->opts = std::move(opts);
  impl_->shared->api = std::move(api);
  impl_->shared->ioc = impl_->ioc;
}

admin_server::~admin_server() {
  stop();
}

bool admin_server::start() {
  auto& d = *impl_;
  if (d.running)
    return true;
  const auto& opts = d.shared->opts;
  beast::error_code ec;
  auto address = asio::ip::make_address(opts.address, ec);
  if (ec) {
    spdlog::error("parley admin cannot listen: invalid [admin] address '{}': {}", opts.address, ec.message());
    return false;
  }
  tcp::endpoint endpoint{address, opts.port};
  d.acceptor = std::make_unique<tcp::acceptor>(*d.ioc);
  d.acceptor->open(endpoint.protocol(), ec);
  if (!ec)
    d.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    d.acceptor->bind(endpoint, ec);
  if (!ec)
    d.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    spdlog::error("parley admin cannot listen on {}:{}: {} (set [admin] address and port)",
                  opts.address, opts.port, ec.message());
    d.acceptor.reset();
    return false;
  }
  d.port = d.acceptor->local_endpoint().port();
  // The gauges exist from the start, so that a scrape never misses them.
  set_readiness_gauges(false, false);
  d.accept();
  d.thread = std::thread([ioc = d.ioc] {
    try {
      ioc->run();
    } catch (const std::exception& e) {
      spdlog::error("admin listener failed: {}", e.what());
    }
  });
  d.running = true;
  spdlog::info("parley admin listening on {}:{}", address.to_string(), d.port);
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  return true;
}

uint16_t admin_server::port() const noexcept {
  return impl_->port;
}

void admin_server::stop() {
  auto& d = *impl_;
  if (!d.running)
    return;
  d.running = false;
  d.ioc->stop();
  if (d.thread.joinable())
    d.thread.join();
  beast::error_code ignored;
  d.acceptor->close(ignored);
  d.acceptor.reset();
  // Connections still queued in the context end with it (or with the last late answer holding it).
  d.ioc.reset();
}

} // namespace parley::admin

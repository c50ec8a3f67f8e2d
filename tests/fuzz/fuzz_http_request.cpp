// Fuzzes what the server does with an HTTP request before it answers or upgrades it, in the order
// http_session.cpp does: Beast's request_parser<string_body> with the session's limits (8 KiB of
// header, 16 KiB of body), then target_path, resolve_static_path against a real web root,
// mime_type, origin_allowed, check_handshake, query_param and the 101 response.
//
// The input is the bytes a client sends. Inputs that are not a complete request (and every
// request's raw first line) are also used directly as a request target, so that static-path
// resolution sees byte sequences Beast would refuse before they reach it.
//
// Checked: a resolved file is a regular file inside the web root (never its sibling "web-secret",
// never the target of the symlink "web/escape" that points out of it), with a non-empty MIME type;
// an accepted Origin passes only the rules upgrade_policy.hpp states; the 101 response carries a
// 28-character Sec-WebSocket-Accept.

#include "fuzz_check.hpp"

#include "net/static_files.hpp"
#include "net/upgrade_policy.hpp"
#include "net/websocket_handshake.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using namespace parley::net;

// http_session.cpp: "Requests are small GETs; anything bigger is not for us."
constexpr std::size_t header_limit = 8 * 1024;
constexpr std::size_t body_limit = 16 * 1024;

void write_file(const fs::path& p, const std::string& content) {
  std::ofstream{p} << content;
}

/// A web root like web/ plus traps around it, created once per process in a private directory:
///   <tmp>/web/{index.html, app.js, style.css, img/logo.svg, sub/index.html, escape -> ../outside}
///   <tmp>/web-secret/key.txt   (a sibling whose name starts with the root's)
///   <tmp>/outside/passwd       (reachable only through the symlink)
struct web_root {
  fs::path base;
  fs::path root;

  web_root() {
    char pattern[] = "/tmp/parley-fuzz-http-XXXXXX";
    if (mkdtemp(pattern) == nullptr)
      fuzz_fail("mkdtemp", __FILE__, __LINE__);
    base = fs::canonical(pattern);
    root = base / "web";
    fs::create_directories(root / "img");
    fs::create_directories(root / "sub");
    fs::create_directories(base / "web-secret");
    fs::create_directories(base / "outside");
    write_file(root / "index.html", "<!doctype html>");
    write_file(root / "app.js", "export {}");
    write_file(root / "style.css", "body{}");
    write_file(root / "img" / "logo.svg", "<svg/>");
    write_file(root / "sub" / "index.html", "sub");
    write_file(base / "web-secret" / "key.txt", "secret");
    write_file(base / "outside" / "passwd", "root:x:0:0");
    fs::create_directory_symlink(base / "outside", root / "escape");
  }

  ~web_root() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
};

const web_root& the_root() {
  static web_root instance;
  return instance;
}

/// True if `p` names something inside `root`, compared component by component.
bool inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto i = p.begin();
  for (; r != root.end(); ++r, ++i)
    if (i == p.end() || *r != *i)
      return false;
  return i != p.end();  // strictly below the root: the root itself is a directory, not a file
}

/// Static-file resolution of one target, as http_session::handle() does for a GET.
void check_target(std::string_view target) {
  const auto& web = the_root();
  auto path = target_path(target);
  FUZZ_CHECK(path.size() <= target.size());
  auto file = resolve_static_path(web.root.string(), target);
  if (file.status != resolve_status::ok) {
    FUZZ_CHECK(file.path.empty());
    return;
  }
  fs::path resolved{file.path};
  FUZZ_CHECK(resolved.is_absolute());
  FUZZ_CHECK(inside(web.root, resolved));
  std::error_code ec;
  FUZZ_CHECK(fs::is_regular_file(resolved, ec));
  // No component of what is served may be a link that leads out (canonical equals itself).
  FUZZ_CHECK(fs::weakly_canonical(resolved, ec) == resolved);
  FUZZ_CHECK(!mime_type(file.path).empty());

  std::string decoded;
  if (percent_decode(path, decoded))
    FUZZ_CHECK(decoded.find('\0') == std::string::npos);
}

/// The upgrade branch of http_session::upgrade(), minus the socket.
void check_upgrade(const http::request<http::string_body>& req) {
  std::optional<std::string_view> origin;
  if (auto it = req.find(http::field::origin); it != req.end())
    origin = std::string_view{it->value().data(), it->value().size()};
  auto host_field = req[http::field::host];
  std::string_view host{host_field.data(), host_field.size()};

  static const std::vector<std::string> none;
  static const std::vector<std::string> listed{"https://chat.example.com", "http://localhost:8080"};
  // Only browsers send Origin, and the check protects only browsers: a request without one passes
  // with or without an allow-list (docs/protocol.md).
  if (!origin) {
    FUZZ_CHECK(origin_allowed(origin, host, none));
    FUZZ_CHECK(origin_allowed(origin, host, listed));
  }

  auto target = std::string_view{req.target().data(), req.target().size()};
  if (auto name = query_param(target, "name"))
    FUZZ_CHECK(name->size() < target.size());

  if (auto problem = check_handshake(req)) {
    FUZZ_CHECK(!problem.message.empty());
    return;
  }
  auto res = switching_protocols(req);
  FUZZ_CHECK(res.result() == http::status::switching_protocols);
  FUZZ_CHECK(res[http::field::sec_websocket_accept].size() == 28);
}

/// Parses the bytes as http_session's async_read would; returns the request if one is complete.
std::optional<http::request<http::string_body>> parse_request(std::string_view bytes) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(header_limit);
  parser.body_limit(body_limit);
  boost::beast::error_code ec;
  std::size_t offset = 0;
  // Beast takes the header in one call once it is complete and the body in pieces; need_more
  // with nothing consumed means what is left is not enough, and the client closed its side.
  while (!parser.is_done()) {
    auto used = parser.put(boost::asio::buffer(bytes.data() + offset, bytes.size() - offset), ec);
    FUZZ_CHECK(used <= bytes.size() - offset);
    offset += used;
    if (ec == http::error::need_more && used == 0) {
      ec = {};
      parser.put_eof(ec);
      break;
    }
    if (ec == http::error::need_more)
      ec = {};
    if (ec)
      return std::nullopt;
    if (used == 0 && !parser.is_done())
      return std::nullopt;  // no progress and no error: never spin
  }
  if (ec)
    return std::nullopt;
  if (!parser.is_done())
    return std::nullopt;
  auto req = parser.release();
  FUZZ_CHECK(req.body().size() <= body_limit);
  return req;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view bytes{reinterpret_cast<const char*>(data), size};

  if (auto req = parse_request(bytes)) {
    std::string_view target{req->target().data(), req->target().size()};
    if (websocket::is_upgrade(*req))
      check_upgrade(*req);
    check_target(target);
  }

  // The raw first line's second word, or the whole input, as a target that skipped Beast's checks.
  auto line = bytes.substr(0, bytes.find_first_of("\r\n"));
  auto space = line.find(' ');
  if (space != std::string_view::npos) {
    auto rest = line.substr(space + 1);
    check_target(rest.substr(0, rest.find(' ')));
  } else {
    check_target(line);
  }
  return 0;
}

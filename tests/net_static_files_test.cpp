// Pure tests of the HTTP side's helpers: static file resolution, MIME types, the Origin check and
// the ?name= parameter.

#include "net/static_files.hpp"
#include "net/upgrade_policy.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace parley::net;
namespace fs = std::filesystem;

namespace {

// A throw-away web root with a file beside it that must never be served.
struct web_root {
  fs::path base = fs::temp_directory_path() / ("parley_net_static_" + std::to_string(::getpid()));
  fs::path root = base / "web";

  web_root() {
    fs::create_directories(root / "sub");
    fs::create_directories(root / "empty");
    write(root / "index.html", "<html></html>");
    write(root / "app.js", "console.log(1)");
    write(root / "sub" / "index.html", "sub");
    write(base / "secret.txt", "secret");
    std::error_code ec;
    fs::create_symlink(base / "secret.txt", root / "leak.txt", ec);
  }
  ~web_root() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  static void write(const fs::path& p, const std::string& text) {
    std::ofstream{p} << text;
  }
  resolved_file resolve(std::string_view target) const {
    return resolve_static_path(root.string(), target);
  }
};

} // namespace

TEST_CASE("the root and directories resolve to their index.html") {
  web_root w;
  auto r = w.resolve("/");
  REQUIRE(r.status == resolve_status::ok);
  CHECK(fs::path{r.path}.filename() == "index.html");
  CHECK(w.resolve("/sub/").status == resolve_status::ok);
  CHECK(w.resolve("/sub").status == resolve_status::ok);
  CHECK(w.resolve("/app.js?v=3").status == resolve_status::ok);
}

TEST_CASE("missing files and directories without an index are not found") {
  web_root w;
  CHECK(w.resolve("/missing.html").status == resolve_status::not_found);
  CHECK(w.resolve("/empty/").status == resolve_status::not_found);
  CHECK(w.resolve("/sub/nothing/here.css").status == resolve_status::not_found);
}

TEST_CASE("path traversal is refused whether encoded or not") {
  web_root w;
  for (auto target : {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                      "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt", "/.%2e/secret.txt",
                      "/sub/..", "/..\\secret.txt", "/%5c..%5csecret.txt", "/a%00b",
                      "/bad%zzescape", "/trailing%2", "relative.txt", ""}) {
    CAPTURE(target);
    CHECK(w.resolve(target).status == resolve_status::bad_request);
  }
}

TEST_CASE("a symlink leading out of the root is not served") {
  web_root w;
  if (fs::is_symlink(w.root / "leak.txt"))
    CHECK(w.resolve("/leak.txt").status == resolve_status::not_found);
}

TEST_CASE("MIME types follow the file extension") {
  CHECK(mime_type("/a/index.html") == "text/html; charset=utf-8");
  CHECK(mime_type("app.JS") == "text/javascript; charset=utf-8");
  CHECK(mime_type("style.css") == "text/css; charset=utf-8");
  CHECK(mime_type("data.json") == "application/json");
  CHECK(mime_type("logo.svg") == "image/svg+xml");
  CHECK(mime_type("logo.png") == "image/png");
  CHECK(mime_type("favicon.ico") == "image/vnd.microsoft.icon");
  CHECK(mime_type("font.woff2") == "font/woff2");
  CHECK(mime_type("blob") == "application/octet-stream");
  CHECK(mime_type("archive.tar.gz") == "application/octet-stream");
}

TEST_CASE("percent-decoding rejects malformed escapes and NUL") {
  std::string out;
  CHECK(percent_decode("/a%20b", out));
  CHECK(out == "/a b");
  CHECK_FALSE(percent_decode("/a%2", out));
  CHECK_FALSE(percent_decode("/a%g0", out));
  CHECK_FALSE(percent_decode("/a%00", out));
}

TEST_CASE("without configured origins only absent or same-host origins may upgrade") {
  std::vector<std::string> none;
  CHECK(origin_allowed(std::nullopt, "localhost:8080", none));
  CHECK(origin_allowed("http://localhost:8080", "localhost:8080", none));
  CHECK(origin_allowed("http://LOCALHOST:8080", "localhost:8080", none));
  CHECK(origin_allowed("http://example.com", "example.com:80", none));
  CHECK(origin_allowed("https://example.com", "example.com", none));
  CHECK_FALSE(origin_allowed("https://example.com", "example.com:80", none));
  CHECK_FALSE(origin_allowed("http://evil.example", "localhost:8080", none));
  CHECK_FALSE(origin_allowed("http://localhost:9999", "localhost:8080", none));
  CHECK_FALSE(origin_allowed("null", "localhost:8080", none));
  CHECK_FALSE(origin_allowed("http://localhost:8080@evil", "localhost:8080", none));
  CHECK_FALSE(origin_allowed("http://localhost:8080", "", none));
}

TEST_CASE("with configured origins a request without Origin (not a browser) may still upgrade") {
  std::vector<std::string> allowed{"https://chat.example.com"};
  CHECK(origin_allowed(std::nullopt, "internal:8080", allowed));
  CHECK(origin_allowed(std::nullopt, "", allowed));
}

TEST_CASE("with configured origins only those may upgrade") {
  std::vector<std::string> allowed{"https://chat.example.com"};
  CHECK(origin_allowed("https://chat.example.com", "internal:8080", allowed));
  CHECK(origin_allowed("https://Chat.Example.com", "internal:8080", allowed));
  CHECK_FALSE(origin_allowed("http://chat.example.com", "internal:8080", allowed));
  CHECK_FALSE(origin_allowed("http://internal:8080", "internal:8080", allowed));

}

TEST_CASE("the name query parameter is found, told apart from absent, and not decoded") {
  CHECK(query_param("/ws", "name") == std::nullopt);
  CHECK(query_param("/ws?other=1", "name") == std::nullopt);
  CHECK(query_param("/ws?name=alice", "name") == std::string{"alice"});
  CHECK(query_param("/ws?x=1&name=bob&name=eve", "name") == std::string{"bob"});
  CHECK(query_param("/ws?name=", "name") == std::string{});
  CHECK(query_param("/ws?name", "name") == std::string{});
  CHECK(query_param("/ws?nickname=x", "name") == std::nullopt);
  CHECK(query_param("/ws?name=a%20b#frag", "name") == std::string{"a%20b"});
}

#include "net/static_files.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>
#include <utility>

namespace parley::net {

namespace fs = std::filesystem;

std::string_view target_path(std::string_view target) {
  auto end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size())
    return false;
  auto tail = s.substr(s.size() - suffix.size());
  return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

// True if `p` lies inside `root` (both absolute and normalized).
bool is_within(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto i = p.begin();
  for (; r != root.end(); ++r, ++i) {
    if (r->empty() && std::next(r) == root.end())
      break; // trailing separator of the root
    if (i == p.end() || *r != *i)
      return false;
  }
  return true;
}

} // namespace

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size())
        return false;
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0)
        return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0')
      return false;
    out.push_back(c);
  }
  return true;
}

resolved_file resolve_static_path(const std::string& root, std::string_view target) {
  auto raw = target_path(target);
  std::string path;
  if (raw.empty() || raw.front() != '/' || !percent_decode(raw, path))
    return {resolve_status::bad_request, {}};
  // Refuse rather than normalize: no legitimate asset needs "..", and a backslash would be a
  // separator on other platforms.
  if (path.find("..") != std::string::npos || path.find('\\') != std::string::npos)
    return {resolve_status::bad_request, {}};
  if (path.back() == '/')
    path += "index.html";

  std::error_code ec;
  auto base = fs::weakly_canonical(fs::absolute(root, ec), ec);
  if (ec)
    return {resolve_status::not_found, {}};
  auto candidate = fs::weakly_canonical(base / fs::path{path}.relative_path(), ec);
  // Symlinks are resolved by weakly_canonical: a link pointing out of the root is refused too.
  if (ec || !is_within(base, candidate))
    return {resolve_status::not_found, {}};
  if (fs::is_directory(candidate, ec)) {
    candidate /= "index.html";
    candidate = fs::weakly_canonical(candidate, ec);
    if (ec || !is_within(base, candidate))
      return {resolve_status::not_found, {}};
  }
  if (!fs::is_regular_file(candidate, ec))
    return {resolve_status::not_found, {}};
  return {resolve_status::ok, candidate.string()};
}

std::string_view mime_type(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> types[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/vnd.microsoft.icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".wasm", "application/wasm"},
    {".webmanifest", "application/manifest+json"},
  };
  for (const auto& [ext, type] : types)
    if (ends_with_ci(path, ext))
      return type;
  return "application/octet-stream";
}

} // namespace parley::net

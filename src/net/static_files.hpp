#pragma once

// Maps HTTP request targets to files under the web root, and file names to MIME types. Pure
// functions apart from the file system lookups in resolve_static_path.

#include <string>
#include <string_view>

namespace parley::net {

/// The outcome of mapping a request target to a file.
enum class resolve_status {
  ok,          ///< `path` names a regular file under the root
  bad_request, ///< malformed target or an attempt to leave the root ("..", encoded or not)
  not_found,   ///< nothing servable there
};

/// A request target mapped to a file.
struct resolved_file {
  resolve_status status = resolve_status::not_found;
  std::string path; ///< set when status is ok
};

/// The path part of a request target (everything before '?' or '#').
std::string_view target_path(std::string_view target);

/// Percent-decodes a URL path; false on a malformed escape or a decoded NUL.
bool percent_decode(std::string_view in, std::string& out);

/// Maps a request target to a regular file under `root`; "/" and directories serve index.html.
resolved_file resolve_static_path(const std::string& root, std::string_view target);

/// The Content-Type for a file name, by extension (application/octet-stream when unknown).
std::string_view mime_type(std::string_view path);

} // namespace parley::net

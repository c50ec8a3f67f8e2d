#pragma once

// A small synchronous Redis client over hiredis, for the cluster actors. Each actor that talks to
// Redis owns one client and runs detached, since every call blocks its thread until Redis answers
// or the timeout passes.

#include "cluster/redis_address.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace parley::cluster {

/// A whole decimal integer (Redis sends numbers as text in bulk strings and stream fields);
/// nullopt for anything else, the empty text included.
std::optional<int64_t> parse_integer(const std::string& text);

/// One Redis reply, copied out of hiredis's tree.
struct redis_reply {
  enum class kind { nil, integer, string, status, error, array };
  kind type = kind::nil;
  int64_t integer = 0;
  std::string str;                   ///< string, status and error replies
  std::vector<redis_reply> elements; ///< arrays

  bool is_error() const noexcept { return type == kind::error; }
  bool is_nil() const noexcept { return type == kind::nil; }
  /// The reply as a number: integers as they are, strings parsed; anything else nullopt.
  std::optional<int64_t> as_integer() const;
};


class redis_client {
public:
  redis_client(redis_address address, std::chrono::milliseconds timeout);
  ~redis_client();
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  /// Connects unless connected. False (with last_error()) if Redis cannot be reached.
  bool connect();
  bool connected() const noexcept { return ctx_ != nullptr; }
  /// Drops the connection; the next connect() opens a new one.
  void disconnect();

  /// One command. nullopt: the connection failed (it is dropped; last_error() says why). A reply of
  /// type error is a reply: the connection stays.
  std::optional<redis_reply> command(const std::vector<std::string>& args);
  /// Several commands written at once, their replies in order (one round trip). nullopt as above.
  std::optional<std::vector<redis_reply>> pipeline(const std::vector<std::vector<std::string>>& commands);
  /// Like command(), with its own read timeout for this one call (a blocking XREAD's wait plus
  /// the usual timeout).
  std::optional<redis_reply> command_waiting(const std::vector<std::string>& args,
                                             std::chrono::milliseconds wait);

  const std::string& last_error() const noexcept { return error_; }

private:
  bool append(const std::vector<std::string>& args);
  std::optional<redis_reply> read_reply();
  void fail(const char* what);

  redis_address address_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

} // namespace parley::cluster

#include "cluster/redis_client.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <sys/time.h>

namespace parley::cluster {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

redis_reply copy_reply(const redisReply& r) {
  redis_reply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = redis_reply::kind::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = redis_reply::kind::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis_reply::kind::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis_reply::kind::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i)
        out.elements.push_back(copy_reply(*r.element[i]));
      break;
    default:
      break;  // nil
  }
  return out;
}

} // namespace

std::optional<int64_t> parse_integer(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

std::optional<int64_t> redis_reply::as_integer() const {
  if (type == kind::integer)
    return integer;
  if (type != kind::string && type != kind::status)
    return std::nullopt;
  return parse_integer(str);
}

redis_client::redis_client(redis_address address, std::chrono::milliseconds timeout)
  : address_(std::move(address)), timeout_(timeout) {
  // nop
}

redis_client::~redis_client() {
  disconnect();
}

bool redis_client::connect() {
  if (ctx_)
    return true;
  auto* ctx = redisConnectWithTimeout(address_.host.c_str(), address_.port, to_timeval(timeout_));
  if (!ctx) {
    error_ = "out of memory";
    return false;
  }
  if (ctx->err) {
    error_ = ctx->errstr;
    redisFree(ctx);
    return false;
  }
  redisSetTimeout(ctx, to_timeval(timeout_));
  ctx_ = ctx;
  error_.clear();
  return true;
}

void redis_client::disconnect() {
  if (ctx_) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
}

void redis_client::fail(const char* what) {
  error_ = ctx_ && ctx_->err ? std::string{ctx_->errstr} : std::string{what};
  disconnect();
}

bool redis_client::append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  if (redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lengths.data()) != REDIS_OK) {
    fail("cannot queue a command");
    return false;
  }
  return true;
}

std::optional<redis_reply> redis_client::read_reply() {
  void* raw = nullptr;
  if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
    fail("no reply");
    return std::nullopt;
  }
  auto* reply = static_cast<redisReply*>(raw);
  auto copy = copy_reply(*reply);
  freeReplyObject(reply);
  return copy;
}

std::optional<redis_reply> redis_client::command(const std::vector<std::string>& args) {
  if (!connect() || !append(args))
    return std::nullopt;
  return read_reply();
}

std::optional<std::vector<redis_reply>>
redis_client::pipeline(const std::vector<std::vector<std::string>>& commands) {
  if (!connect())
    return std::nullopt;
  for (const auto& args : commands)
    if (!append(args))
      return std::nullopt;
  std::vector<redis_reply> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    auto reply = read_reply();
    if (!reply)
      return std::nullopt;
    replies.push_back(std::move(*reply));
  }
  return replies;
}

std::optional<redis_reply> redis_client::command_waiting(const std::vector<std::string>& args,
                                                         std::chrono::milliseconds wait) {
  if (!connect())
    return std::nullopt;
  redisSetTimeout(ctx_, to_timeval(timeout_ + wait));
  auto reply = command(args);
  if (ctx_)
    redisSetTimeout(ctx_, to_timeval(timeout_));
  return reply;
}

} // namespace parley::cluster

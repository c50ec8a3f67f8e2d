#include "protocol/log_line.hpp"

#include <nlohmann/json.hpp>

namespace parley::protocol {

std::string encode_log_line(const log_line& line) {
  // An ordered object keeps msg last, so a reader that only wants the text finds it at the end.
  nlohmann::ordered_json object;
  object["ts"] = line.ts;
  object["level"] = line.level;
  object["logger"] = line.logger;
  object["msg"] = line.msg;
  try {
    return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (...) {
    return R"({"level":"error","msg":"log line could not be encoded"})";  // not reached: replace never throws
  }
}

} // namespace parley::protocol

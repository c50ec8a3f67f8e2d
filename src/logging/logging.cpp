#include "logging/logging.hpp"

#include "protocol/log_line.hpp"

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

namespace parley::logging {

namespace {

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

/// ISO 8601 in UTC with milliseconds: what log collectors parse without configuration.
std::string iso_time(std::chrono::system_clock::time_point t) {
  auto seconds = std::chrono::system_clock::to_time_t(t);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return buf;
}

/// [log] format = "json": one JSON object per line.
class json_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto ts = iso_time(msg.time);
    std::string_view logger{msg.logger_name.data(), msg.logger_name.size()};
    auto line = protocol::encode_log_line({ts, level_name(msg.level),
                                           logger.empty() ? std::string_view{"parley"} : logger,
                                           {msg.payload.data(), msg.payload.size()}});
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

std::shared_ptr<spdlog::logger> make_access_logger() {
  auto base = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>("access", base->sinks().begin(), base->sinks().end());
  logger->set_level(base->level());
  // Registered, so that spdlog::set_level and set_formatter in configure() reach it too.
  if (!spdlog::get("access"))
    spdlog::register_logger(logger);
  return logger;
}

} // namespace

std::optional<spdlog::level::level_enum> level_from_name(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return std::nullopt;
}

void configure(const log_settings& s) {
  access();  // exists before the settings below, which apply to every registered logger
  spdlog::set_level(level_from_name(s.level).value_or(spdlog::level::info));
  if (s.format == "json")
    spdlog::set_formatter(std::make_unique<json_formatter>());
}

spdlog::logger& access() {
  static const std::shared_ptr<spdlog::logger> logger = make_access_logger();
  return *logger;
}

} // namespace parley::logging

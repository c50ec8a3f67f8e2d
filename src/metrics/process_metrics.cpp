#include "metrics/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace parley::metrics {

namespace {

std::vector<computed_sample> one(std::optional<double> value) {
  if (!value)
    return {};  // no sample rather than a wrong one
  return {computed_sample{{}, *value}};
}

double seconds_of(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

} // namespace

std::optional<double> resident_memory_bytes() {
  std::ifstream statm{"/proc/self/statm"};
  unsigned long long size = 0, resident = 0;
  if (!(statm >> size >> resident))
    return std::nullopt;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

std::optional<double> open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir)
    return std::nullopt;
  double n = 0;
  while (auto* entry = readdir(dir))
    if (entry->d_name[0] != '.')
      ++n;
  closedir(dir);
  return n - 1;  // the descriptor opendir() itself holds while it lists
}

std::optional<double> max_fds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return std::nullopt;
  return static_cast<double>(limit.rlim_cur);
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime);
}

std::optional<unsigned long long> start_ticks_from_stat(std::string_view stat_line) {
  auto close = stat_line.rfind(')');
  if (close == std::string_view::npos)
    return std::nullopt;
  // After ") " come field 3 (state) onwards; starttime is field 22, the 20th of them.
  std::istringstream rest{std::string{stat_line.substr(close + 1)}};
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field))
      return std::nullopt;
  char* end = nullptr;
  auto ticks = std::strtoull(field.c_str(), &end, 10);
  if (end == field.c_str() || *end != '\0')
    return std::nullopt;
  return ticks;
}

std::optional<double> start_time_seconds() {
  std::ifstream stat_file{"/proc/self/stat"};
  std::string line;
  if (!std::getline(stat_file, line))
    return std::nullopt;
  auto ticks = start_ticks_from_stat(line);
  if (!ticks)
    return std::nullopt;
  std::ifstream proc_stat{"/proc/stat"};
  std::string key;
  double boot_time = -1;
  while (proc_stat >> key) {
    if (key == "btime") {
      proc_stat >> boot_time;
      break;
    }
    std::getline(proc_stat, key);  // the rest of a line we do not need
  }
  auto hz = sysconf(_SC_CLK_TCK);
  if (boot_time < 0 || hz <= 0)
    return std::nullopt;
  return boot_time + static_cast<double>(*ticks) / static_cast<double>(hz);
}

void register_process_metrics(registry& r) {
  r.add_computed("process_resident_memory_bytes", "Resident memory size in bytes.",
                 metric_type::gauge, [] { return one(resident_memory_bytes()); });
  r.add_computed("process_open_fds", "Number of open file descriptors.", metric_type::gauge,
                 [] { return one(open_fds()); });
  r.add_computed("process_max_fds", "Maximum number of open file descriptors.", metric_type::gauge,
                 [] { return one(max_fds()); });
  r.add_computed("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 metric_type::counter, [] { return one(cpu_seconds()); });
  // The start never changes: read once.
  auto started = start_time_seconds();
  r.add_computed("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
                 metric_type::gauge, [started] { return one(started); });
}

} // namespace parley::metrics

#pragma once

// The process metrics every Prometheus client exports (process_resident_memory_bytes,
// process_open_fds, process_max_fds, process_cpu_seconds_total, process_start_time_seconds),
// computed from /proc and getrusage() when /metrics is scraped. Linux only, like Parley.

#include "metrics/registry.hpp"

#include <optional>
#include <string_view>

namespace parley::metrics {

/// Registers the process metrics into `r` (once per registry: names are unique).
void register_process_metrics(registry& r);

/// Resident set size in bytes (/proc/self/statm), nullopt if unreadable.
std::optional<double> resident_memory_bytes();

/// Open file descriptors (entries of /proc/self/fd), nullopt if unreadable.
std::optional<double> open_fds();

/// The soft limit on file descriptors (RLIMIT_NOFILE), nullopt if unlimited or unknown.
std::optional<double> max_fds();

/// User plus system CPU time of the whole process, in seconds (getrusage).
double cpu_seconds();

/// When the process started, in Unix seconds: its start in clock ticks after boot
/// (/proc/self/stat, field 22) plus the boot time (/proc/stat, btime). nullopt if unreadable.
std::optional<double> start_time_seconds();

/// Field 22 (starttime) of a /proc/<pid>/stat line, nullopt if the line is malformed. The command
/// name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
std::optional<unsigned long long> start_ticks_from_stat(std::string_view stat_line);

} // namespace parley::metrics

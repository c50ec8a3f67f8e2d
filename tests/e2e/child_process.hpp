#pragma once

// What the e2e helpers that run other servers (nginx_process, redis_process) share: starting a
// child that cannot outlive the test, and asking whether a loopback port accepts connections.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace parley::e2e {

/// Forks and execs args[0] with args, stdin from /dev/null and stdout and stderr appended to
/// `output_path`. The child gets no descriptor of the test but those three, and dies with the test
/// (PR_SET_PDEATHSIG), so no server outlives a crashed test. Fails the test if it cannot start.
pid_t spawn_child(std::vector<std::string> args, const std::string& output_path);

/// The whole text of a file ("" if it cannot be read): the servers' logs, for failure messages.
std::string read_file(const std::string& path);

/// True if a TCP connection to 127.0.0.1:port succeeds now.
bool accepts_connections(uint16_t port);

} // namespace parley::e2e

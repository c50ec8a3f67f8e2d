#pragma once

// Tells a service manager such as systemd how the server is doing, with the sd_notify protocol:
// one datagram of "KEY=VALUE" lines sent to the unix socket named by $NOTIFY_SOCKET. With
// Type=notify in the unit, systemd counts the service as started only once READY=1 arrives, so
// units ordered after Parley start when it really accepts connections. Written here, without
// libsystemd: the protocol is one sendto().

#include <sys/socket.h>
#include <sys/un.h>

#include <optional>
#include <string_view>

namespace parley::net {

/// A unix datagram address and its length as sendto() wants it.
struct notify_address {
  sockaddr_un address{};
  socklen_t length = 0;
};

/// The address named by a NOTIFY_SOCKET value: an absolute path ("/run/systemd/notify") or an
/// abstract socket name ("@name", the '@' standing for the leading NUL byte). nullopt for anything
/// else (empty, relative, too long for sun_path, or systemd's newer vsock: addresses).
std::optional<notify_address> parse_notify_socket(std::string_view value);

/// Sends `state` (e.g. "READY=1" or "STOPPING=1") to the service manager when $NOTIFY_SOCKET is
/// set. Returns true if it was sent; false, silently, when the variable is unset (not started by a
/// service manager), and false with a warning in the log when it is set but the send fails.
bool notify_service_manager(std::string_view state);

} // namespace parley::net

#include "net/service_notify.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace parley::net {

std::optional<notify_address> parse_notify_socket(std::string_view value) {
  if (value.size() < 2 || (value.front() != '/' && value.front() != '@'))
    return std::nullopt;
  notify_address out;
  out.address.sun_family = AF_UNIX;
  // A path needs room for its terminating NUL; an abstract name is counted by the length alone.
  bool abstract = value.front() == '@';
  std::size_t room = sizeof(out.address.sun_path) - (abstract ? 0 : 1);
  if (value.size() > room)
    return std::nullopt;
  std::memcpy(out.address.sun_path, value.data(), value.size());
  if (abstract)
    out.address.sun_path[0] = '\0';
  out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() +
                                      (abstract ? 0 : 1));
  return out;
}

bool notify_service_manager(std::string_view state) {
  const char* value = std::getenv("NOTIFY_SOCKET");
  if (value == nullptr || *value == '\0')
    return false;
  auto target = parse_notify_socket(value);
  if (!target) {
    spdlog::warn("parley cannot notify the service manager: unsupported NOTIFY_SOCKET '{}'", value);
    return false;
  }
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    spdlog::warn("parley failed to notify the service manager: socket: {}", std::strerror(errno));
    return false;
  }
  auto sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&target->address), target->length);
  int error = errno;
  ::close(fd);
  if (sent != static_cast<ssize_t>(state.size())) {
    spdlog::warn("parley failed to notify the service manager ({}): {}", value,
                 sent < 0 ? std::strerror(error) : "short write");
    return false;
  }
  return true;
}

} // namespace parley::net

#pragma once

// Wall-clock time as Parley stores and sends it (message ts, ban and mute "until", audit times).

#include <chrono>
#include <cstdint>

namespace parley {

/// Now, in milliseconds since the Unix epoch.
inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace parley

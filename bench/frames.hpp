#pragma once

// Just enough reading of Parley's server frames for the load generators, without a JSON parser:
// server frames are compact JSON with "type" first (docs/protocol.md), user and room names cannot
// hold quotes or commas, and quotes inside text values are escaped, so a `"key":` found in a frame
// is a key and never part of a value.
//
// Works with both protocol versions: the new presence frames (`count` in joined, presence_diff,
// presence_state) and the old ones (joined's full `members` list, one `presence` frame per user
// going online or offline).

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace bench {

inline bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::memcmp(s.data(), prefix.data(), prefix.size()) == 0;
}

/// The value of "type" when the frame starts with it ("" otherwise).
inline std::string_view frame_type(std::string_view f) {
  static constexpr std::string_view head = R"({"type":")";
  if (!starts_with(f, head)) return {};
  auto end = f.find('"', head.size());
  return end == std::string_view::npos ? std::string_view{} : f.substr(head.size(), end - head.size());
}

/// An unsigned integer field, e.g. "count"; nullopt when the frame has none.
inline std::optional<uint64_t> uint_field(std::string_view f, std::string_view key) {
  std::string pattern = "\"" + std::string(key) + "\":";
  auto pos = f.find(pattern);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += pattern.size();
  if (pos >= f.size() || f[pos] < '0' || f[pos] > '9') return std::nullopt;
  uint64_t v = 0;
  while (pos < f.size() && f[pos] >= '0' && f[pos] <= '9') v = v * 10 + uint64_t(f[pos++] - '0');
  return v;
}

/// A string field's raw value (names, cids and codes need no unescaping); nullopt when absent.
inline std::optional<std::string_view> string_field(std::string_view f, std::string_view key) {
  std::string pattern = "\"" + std::string(key) + "\":\"";
  auto pos = f.find(pattern);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += pattern.size();
  auto end = f.find('"', pos);
  if (end == std::string_view::npos) return std::nullopt;
  return f.substr(pos, end - pos);
}

/// Elements of an array of names such as "members" (names hold no commas); nullopt when absent.
inline std::optional<uint64_t> name_array_length(std::string_view f, std::string_view key) {
  std::string pattern = "\"" + std::string(key) + "\":[";
  auto pos = f.find(pattern);
  if (pos == std::string_view::npos) return std::nullopt;
  pos += pattern.size();
  auto end = f.find(']', pos);
  if (end == std::string_view::npos) return std::nullopt;
  if (end == pos) return 0;
  uint64_t n = 1;
  for (auto k = pos; k < end; ++k) n += f[k] == ',';
  return n;
}

/// One client's view of how many users are present in the room it joined, kept from whichever
/// presence frames the server speaks.
struct member_count_view {
  static constexpr long unknown = -1;
  long count = unknown; // unknown until `joined`

  /// Applies one frame of type `type`; true if it was a presence frame the view used.
  bool apply(std::string_view type, std::string_view f) {
    if (type == "joined" || type == "presence_state") {
      // New protocol: the room's count. Old protocol: joined lists every present user.
      if (auto c = uint_field(f, "count")) return set(long(*c));
      if (auto n = name_array_length(f, "members")) return set(long(*n));
      return false;
    }
    if (type == "presence_diff") {
      if (auto c = uint_field(f, "count")) return set(long(*c));
      return false;
    }
    if (type == "presence") { // the old protocol: one frame per user going online or offline
      if (count == unknown) return false; // from before our own joined: already in its list
      auto state = string_field(f, "state");
      if (!state) return false;
      return set(count + (*state == "online" ? 1 : *state == "offline" ? -1 : 0));
    }
    return false;
  }

private:
  bool set(long c) {
    count = c;
    return true;
  }
};

} // namespace bench

#pragma once

// Protocol errors travel between actors as caf::error values of one category, so that a room can
// refuse a join with room_full and the session can turn that into the matching error frame.

#include "protocol/messages.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include <cstdint>
#include <optional>

namespace parley {

/// The caf::error category of protocol::error_code values.
inline constexpr caf::atom_value error_category = caf::atom("parley");

/// Wraps a protocol error code in a caf::error. CAF treats code 0 as "no error", hence the offset.
inline caf::error make_protocol_error(protocol::error_code code) {
  return caf::error{static_cast<uint8_t>(static_cast<uint8_t>(code) + 1), error_category};
}

/// A banned or muted error that says until when (ms since the Unix epoch; nullopt: for good).
inline caf::error make_protocol_error(protocol::error_code code, std::optional<int64_t> until) {
  // The context message carries the time; -1 stands for "for good".
  return caf::error{static_cast<uint8_t>(static_cast<uint8_t>(code) + 1), error_category,
                    caf::make_message(until.value_or(-1))};
}

/// The "until" a banned or muted error carries, if it carries one.
inline std::optional<int64_t> error_until(const caf::error& err) {
  const auto& ctx = err.context();
  if (err.category() != error_category || !ctx.match_elements<int64_t>())
    return std::nullopt;
  auto until = ctx.get_as<int64_t>(0);
  if (until < 0)
    return std::nullopt;
  return until;
}

/// Maps any error an actor request can end with to the protocol code the client sees.
inline protocol::error_code to_protocol_error(const caf::error& err) {
  if (err.category() == error_category)
    return static_cast<protocol::error_code>(err.code() - 1);
  // A room that died or is restarting: the client may retry with the same cid.
  if (err == caf::sec::request_receiver_down || err == caf::sec::request_timeout)
    return protocol::error_code::room_unavailable;
  return protocol::error_code::internal;
}

/// The error of a failed request to the store: its own answers (store_unavailable) pass through;
/// anything else means the store died or is restarting, which is store_unavailable as well.
inline caf::error from_store(caf::error err) {
  if (err.category() == error_category)
    return err;
  return make_protocol_error(protocol::error_code::store_unavailable);
}

} // namespace parley

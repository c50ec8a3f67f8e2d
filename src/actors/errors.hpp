#pragma once

// Protocol errors travel between actors as caf::error values of one category, so that a room can
// refuse a join with room_full and the session can turn that into the matching error frame.

#include "protocol/messages.hpp"

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/sec.hpp>

namespace parley {

/// The caf::error category of protocol::error_code values.
inline constexpr caf::atom_value error_category = caf::atom("parley");

/// Wraps a protocol error code in a caf::error. CAF treats code 0 as "no error", hence the offset.
inline caf::error make_protocol_error(protocol::error_code code) {
  return caf::error{static_cast<uint8_t>(static_cast<uint8_t>(code) + 1), error_category};
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

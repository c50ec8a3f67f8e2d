#pragma once

// JSON <-> typed protocol v1. The only file pair in Parley that knows JSON (nlohmann/json).
// Decoding never throws: every bad input becomes a decode_error with a stable code.

#include "auth/claims.hpp"
#include "protocol/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace parley::protocol {

/// Limits the decoder enforces; filled from config.
struct codec_limits {
  std::size_t max_text_bytes = 4096;  ///< "text" of a send, in UTF-8 bytes
  std::size_t max_depth = 8;          ///< JSON nesting depth; deeper frames get too_deep
  uint32_t max_history_page = 100;    ///< "limit" of a history command is capped to this
  uint32_t default_history_page = 50; ///< "limit" when the client gives none
  std::size_t max_ref_bytes = 64;     ///< longer "ref" values are a bad_field
  std::size_t max_cid_bytes = 64;     ///< longer "cid" values are a bad_field
  uint32_t page_size = 100;           ///< names in one "who" page: its default and largest "limit"
  std::size_t max_status_users = 100; ///< names in one "status" command
  std::size_t max_token_bytes = 8192; ///< "token" of auth and refresh
  std::size_t max_reason_bytes = 200; ///< "reason" of a moderation command
};

/// User names: 1-32 characters of [A-Za-z0-9_.-].
bool is_valid_user_name(std::string_view name);

/// Room names: 1-64 characters of [A-Za-z0-9_.-].
bool is_valid_room_name(std::string_view name);

/// Decodes one text frame. Never throws.
inbound decode(std::string_view text, const codec_limits& limits);

/// An inbound that reports a binary frame (protocol v1 is text only).
inbound binary_frame_error();

// -- encoders: one JSON text per event --------------------------------------------------------------

std::string encode(const welcome_event& ev);
/// Splices the pre-encoded history messages in as they are: a join costs no message encoding.
std::string encode(const joined_event& ev);
std::string encode(const left_event& ev);
std::string encode(const history_event& ev);
std::string encode(const who_event& ev);
std::string encode(const presence_diff_event& ev);
std::string encode(const presence_state_event& ev);
std::string encode(const status_event& ev);
std::string encode(const typing_event& ev);
std::string encode(const notice_event& ev);
std::string encode(const pong_event& ev);
std::string encode(const error_event& ev);
std::string encode(const refreshed_event& ev);
std::string encode(const moderation_event& ev);
std::string encode(const moderated_event& ev);
/// A chat message as a {"type":"message",...} event.
std::string encode(const chat_message& msg);

// -- JSON Web Token parts (auth/jwt.hpp does the base64url and the signatures) ----------------------

/// A token's decoded header JSON; nullopt unless it is an object whose "alg" is a string.
std::optional<auth::token_header> decode_token_header(std::string_view json);

/// A token's decoded payload JSON; nullopt if it is not an object or a known claim has the wrong
/// type (exp/nbf/iat: integers; sub/name/iss: strings; aud and the roles claim: a string or an
/// array of strings; the rooms claim: an array of strings).
std::optional<auth::token_claims> decode_token_claims(std::string_view json,
                                                      const std::string& roles_claim,
                                                      const std::string& rooms_claim);

std::string encode_token_header(const auth::token_header& header);
/// Only the claims that are set (non-empty, or with a value).
std::string encode_token_claims(const auth::token_claims& claims, const std::string& roles_claim,
                                const std::string& rooms_claim);

} // namespace parley::protocol

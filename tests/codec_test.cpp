// Tests of protocol v1's JSON codec: every command, every event, and the bad input the decoder must
// turn into stable error codes instead of crashes.

#include "protocol/codec.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <variant>

namespace doctest {
template <>
struct StringMaker<parley::protocol::error_code> {
  static String convert(parley::protocol::error_code code) { return parley::protocol::to_string(code); }
};
} // namespace doctest

namespace {

using namespace parley::protocol;
using nlohmann::json;

const codec_limits default_limits{};

template <class Command>
Command decode_as(std::string_view text, const codec_limits& limits = default_limits) {
  auto in = decode(text, limits);
  if (auto* error = std::get_if<decode_error>(&in.cmd))
    FAIL_CHECK("unexpected decode_error ", error->code, ": ", error->message);
  REQUIRE(std::holds_alternative<Command>(in.cmd));
  return std::get<Command>(in.cmd);
}

decode_error decode_failure(std::string_view text, const codec_limits& limits = default_limits) {
  auto in = decode(text, limits);
  REQUIRE(std::holds_alternative<decode_error>(in.cmd));
  return std::get<decode_error>(in.cmd);
}

bool mentions(const decode_error& error, std::string_view field) {
  return error.message.find("\"" + std::string{field} + "\"") != std::string::npos;
}

std::string nested_arrays(std::size_t depth, bool closed = true) {
  std::string text(depth, '[');
  if (closed)
    text.append(depth, ']');
  return text;
}

/// A ping carrying `depth - 1` nested arrays under its object, so the whole frame nests `depth` deep.
std::string ping_with_depth(std::size_t depth) {
  return R"({"type":"ping","x":)" + nested_arrays(depth - 1) + "}";
}

/// A send whose "text" is `raw` pasted between the quotes unchanged, so tests can put bytes there
/// that no JSON library would write.
std::string send_with_raw_text(std::string_view raw) {
  return R"({"type":"send","room":"r","text":")" + std::string{raw} + "\"}";
}

chat_message sample_message() {
  return chat_message{"general", 7, "alice", "hello", 1700000000123, "c-1"};
}

encoded_message encoded(const chat_message& msg) {
  return std::make_shared<const std::string>(encode(msg));
}

} // namespace

// -- names -----------------------------------------------------------------------------------------------

TEST_CASE("user names accept 1 to 32 letters, digits, underscores, dots and dashes") {
  CHECK(is_valid_user_name("a"));
  CHECK(is_valid_user_name("Alice_01.b-c"));
  CHECK(is_valid_user_name(std::string(32, 'x')));
}

TEST_CASE("user names that are empty, longer than 32 or use other characters are invalid") {
  CHECK_FALSE(is_valid_user_name(""));
  CHECK_FALSE(is_valid_user_name(std::string(33, 'x')));
  CHECK_FALSE(is_valid_user_name("al ice"));
  CHECK_FALSE(is_valid_user_name("alice!"));
  CHECK_FALSE(is_valid_user_name("al/ice"));
  CHECK_FALSE(is_valid_user_name("j\xC3\xB6rg"));
  CHECK_FALSE(is_valid_user_name(std::string_view("al\0ice", 6)));
}

TEST_CASE("room names accept up to 64 characters and reject 65") {
  CHECK(is_valid_room_name("general"));
  CHECK(is_valid_room_name("team.backend-2_x"));
  CHECK(is_valid_room_name(std::string(64, 'r')));
  CHECK_FALSE(is_valid_room_name(std::string(65, 'r')));
}

TEST_CASE("room names that are empty or use spaces, slashes or non-ASCII are invalid") {
  CHECK_FALSE(is_valid_room_name(""));
  CHECK_FALSE(is_valid_room_name("my room"));
  CHECK_FALSE(is_valid_room_name("a/b"));
  CHECK_FALSE(is_valid_room_name("caf\xC3\xA9"));
}

TEST_CASE("every error code has its stable wire name") {
  CHECK(std::string{to_string(error_code::bad_json)} == "bad_json");
  CHECK(std::string{to_string(error_code::too_deep)} == "too_deep");
  CHECK(std::string{to_string(error_code::unknown_type)} == "unknown_type");
  CHECK(std::string{to_string(error_code::missing_field)} == "missing_field");
  CHECK(std::string{to_string(error_code::bad_field)} == "bad_field");
  CHECK(std::string{to_string(error_code::invalid_name)} == "invalid_name");
  CHECK(std::string{to_string(error_code::text_too_long)} == "text_too_long");
  CHECK(std::string{to_string(error_code::not_member)} == "not_member");
  CHECK(std::string{to_string(error_code::room_full)} == "room_full");
  CHECK(std::string{to_string(error_code::too_many_rooms)} == "too_many_rooms");
  CHECK(std::string{to_string(error_code::binary_not_supported)} == "binary_not_supported");
  CHECK(std::string{to_string(error_code::rate_limited)} == "rate_limited");
  CHECK(std::string{to_string(error_code::room_unavailable)} == "room_unavailable");
  CHECK(std::string{to_string(error_code::internal)} == "internal");
}

// -- commands ------------------------------------------------------------------------------------------

TEST_CASE("a join with only a room decodes to a join without recovery") {
  auto cmd = decode_as<join_cmd>(R"({"type":"join","room":"general"})");
  CHECK(cmd.room == "general");
  CHECK_FALSE(cmd.since.has_value());
  CHECK_FALSE(cmd.epoch.has_value());
}

TEST_CASE("a join with since and epoch carries both for recovery") {
  auto cmd = decode_as<join_cmd>(R"({"type":"join","room":"general","since":41,"epoch":3})");
  CHECK(cmd.room == "general");
  CHECK(cmd.since == uint64_t{41});
  CHECK(cmd.epoch == uint64_t{3});
}

TEST_CASE("a join with since zero and the largest epoch keeps both exactly") {
  auto cmd = decode_as<join_cmd>(R"({"type":"join","room":"r","since":0,"epoch":18446744073709551615})");
  CHECK(cmd.since == uint64_t{0});
  CHECK(cmd.epoch == std::numeric_limits<uint64_t>::max());
}

TEST_CASE("a send decodes room, text and cid") {
  auto cmd = decode_as<send_cmd>(R"({"type":"send","room":"general","text":"hi there","cid":"m-1"})");
  CHECK(cmd.room == "general");
  CHECK(cmd.text == "hi there");
  CHECK(cmd.cid == "m-1");
}

TEST_CASE("a send without cid has an empty cid") {
  auto cmd = decode_as<send_cmd>(R"({"type":"send","room":"general","text":"hi"})");
  CHECK(cmd.text == "hi");
  CHECK(cmd.cid.empty());
}

TEST_CASE("a send with text of exactly the limit in UTF-8 bytes is accepted") {
  codec_limits limits;
  limits.max_text_bytes = 10;
  // Five two-byte characters: ten bytes.
  auto cmd = decode_as<send_cmd>(send_with_raw_text("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), limits);
  CHECK(cmd.text.size() == 10);
}

TEST_CASE("a send with text over the limit is rejected with text_too_long") {
  codec_limits limits;
  limits.max_text_bytes = 10;
  // Six characters, but twelve bytes: the limit counts bytes, not characters.
  auto error = decode_failure(send_with_raw_text("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"), limits);
  CHECK(error.code == error_code::text_too_long);
  CHECK(mentions(error, "text"));

  auto ascii = json{{"type", "send"}, {"room", "r"}, {"text", std::string(4097, 'a')}}.dump();
  CHECK(decode_failure(ascii).code == error_code::text_too_long);
  auto at_limit = json{{"type", "send"}, {"room", "r"}, {"text", std::string(4096, 'a')}}.dump();
  CHECK(decode_as<send_cmd>(at_limit).text.size() == 4096);
}

TEST_CASE("a send with empty text is rejected with bad_field") {
  auto error = decode_failure(R"({"type":"send","room":"general","text":""})");
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "text"));
}

TEST_CASE("a send whose text is not a string is rejected with bad_field") {
  for (auto text : {"42", "null", "true", R"(["hi"])", R"({"t":"hi"})"}) {
    CAPTURE(text);
    auto error = decode_failure(std::string{R"({"type":"send","room":"general","text":)"} + text + "}");
    CHECK(error.code == error_code::bad_field);
    CHECK(mentions(error, "text"));
  }
}

TEST_CASE("a send without text is rejected with missing_field") {
  auto error = decode_failure(R"({"type":"send","room":"general"})");
  CHECK(error.code == error_code::missing_field);
  CHECK(mentions(error, "text"));
}

TEST_CASE("a send with a cid longer than max_cid_bytes is rejected with bad_field") {
  codec_limits limits;
  limits.max_cid_bytes = 4;
  CHECK(decode_as<send_cmd>(R"({"type":"send","room":"r","text":"x","cid":"abcd"})", limits).cid == "abcd");
  auto error = decode_failure(R"({"type":"send","room":"r","text":"x","cid":"abcde"})", limits);
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "cid"));
}

TEST_CASE("a send whose cid is not a string is rejected with bad_field") {
  auto error = decode_failure(R"({"type":"send","room":"r","text":"x","cid":12})");
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "cid"));
}

TEST_CASE("a history without before or limit asks for the newest default page") {
  codec_limits limits;
  limits.default_history_page = 30;
  auto cmd = decode_as<history_cmd>(R"({"type":"history","room":"general"})", limits);
  CHECK(cmd.room == "general");
  CHECK_FALSE(cmd.before.has_value());
  CHECK(cmd.limit == 30);
}

TEST_CASE("a history with before and limit carries both") {
  auto cmd = decode_as<history_cmd>(R"({"type":"history","room":"general","before":120,"limit":25})");
  CHECK(cmd.before == uint64_t{120});
  CHECK(cmd.limit == 25);
}

TEST_CASE("a history limit above the maximum is capped, not refused") {
  codec_limits limits;
  limits.max_history_page = 100;
  CHECK(decode_as<history_cmd>(R"({"type":"history","room":"r","limit":101})", limits).limit == 100);
  CHECK(decode_as<history_cmd>(R"({"type":"history","room":"r","limit":100})", limits).limit == 100);
  // Past uint32_t as well: capping must happen before narrowing.
  CHECK(decode_as<history_cmd>(R"({"type":"history","room":"r","limit":4294967396})", limits).limit == 100);
}

TEST_CASE("a default history page larger than the maximum is capped to the maximum") {
  codec_limits limits;
  limits.max_history_page = 20;
  limits.default_history_page = 50;
  CHECK(decode_as<history_cmd>(R"({"type":"history","room":"r"})", limits).limit == 20);
}

TEST_CASE("a history limit of zero is rejected with bad_field") {
  auto error = decode_failure(R"({"type":"history","room":"r","limit":0})");
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "limit"));
}

TEST_CASE("a history before of zero is rejected with bad_field because zero means newest to a room") {
  auto error = decode_failure(R"({"type":"history","room":"r","before":0})");
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "before"));
}

TEST_CASE("a history with a negative or non-integer before or limit is rejected with bad_field") {
  for (auto frame : {R"({"type":"history","room":"r","before":-1})",
                     R"({"type":"history","room":"r","before":"5"})",
                     R"({"type":"history","room":"r","limit":2.5})",
                     R"({"type":"history","room":"r","limit":-3})"}) {
    CAPTURE(frame);
    CHECK(decode_failure(frame).code == error_code::bad_field);
  }
}

TEST_CASE("leave, who and typing decode their room") {
  CHECK(decode_as<leave_cmd>(R"({"type":"leave","room":"general"})").room == "general");
  CHECK(decode_as<who_cmd>(R"({"type":"who","room":"lobby"})").room == "lobby");
  CHECK(decode_as<typing_cmd>(R"({"type":"typing","room":"dev.ops"})").room == "dev.ops");
}

TEST_CASE("a who without after or limit asks for the first page of page_size names") {
  codec_limits limits;
  limits.page_size = 30;
  auto cmd = decode_as<who_cmd>(R"({"type":"who","room":"lobby"})", limits);
  CHECK_FALSE(cmd.after.has_value());
  CHECK(cmd.limit == 30);
}

TEST_CASE("a who with after and limit carries both") {
  auto cmd = decode_as<who_cmd>(R"({"type":"who","room":"lobby","after":"bob","limit":25})");
  CHECK(cmd.after == std::optional<std::string>{"bob"});
  CHECK(cmd.limit == 25);
}

TEST_CASE("a who limit above page_size is capped, not refused") {
  codec_limits limits;
  limits.page_size = 100;
  CHECK(decode_as<who_cmd>(R"({"type":"who","room":"r","limit":101})", limits).limit == 100);
  CHECK(decode_as<who_cmd>(R"({"type":"who","room":"r","limit":4294967396})", limits).limit == 100);
}

TEST_CASE("a who limit of zero, or one that is not a non-negative integer, is rejected with bad_field") {
  for (auto limit : {"0", "-1", "2.5", R"("10")", "null"}) {
    CAPTURE(limit);
    auto error = decode_failure(std::string{R"({"type":"who","room":"r","limit":)"} + limit + "}");
    CHECK(error.code == error_code::bad_field);
    CHECK(mentions(error, "limit"));
  }
}

TEST_CASE("a who whose after breaks the user naming rule is rejected with invalid_name") {
  for (std::string after : {std::string{R"("")"}, std::string{R"("al ice")"}, std::string{R"("alice!")"},
                            "\"" + std::string(33, 'x') + "\""}) {
    CAPTURE(after);
    auto error = decode_failure(std::string{R"({"type":"who","room":"r","after":)"} + after + "}");
    CHECK(error.code == error_code::invalid_name);
    CHECK(mentions(error, "after"));
  }
}

TEST_CASE("a who whose after is not a string is rejected with bad_field") {
  for (auto after : {"7", "null", R"(["bob"])"}) {
    CAPTURE(after);
    auto error = decode_failure(std::string{R"({"type":"who","room":"r","after":)"} + after + "}");
    CHECK(error.code == error_code::bad_field);
    CHECK(mentions(error, "after"));
  }
}

TEST_CASE("a status decodes its user names in the order asked, repeats included") {
  auto cmd = decode_as<status_cmd>(R"({"type":"status","users":["carol","bob","carol"],"ref":"s1"})");
  CHECK(cmd.users == std::vector<std::string>{"carol", "bob", "carol"});
}

TEST_CASE("a status takes up to max_status_users names and refuses one more with bad_field") {
  codec_limits limits;
  limits.max_status_users = 3;
  CHECK(decode_as<status_cmd>(R"({"type":"status","users":["a","b","c"]})", limits).users.size() == 3);
  auto error = decode_failure(R"({"type":"status","users":["a","b","c","d"]})", limits);
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "users"));
  auto hundred = json{{"type", "status"}, {"users", std::vector<std::string>(100, "u")}}.dump();
  CHECK(decode_as<status_cmd>(hundred).users.size() == 100);
  auto too_many = json{{"type", "status"}, {"users", std::vector<std::string>(101, "u")}}.dump();
  CHECK(decode_failure(too_many).code == error_code::bad_field);
}

TEST_CASE("a status with an empty array, a non-array or a non-string name is rejected with bad_field") {
  for (auto users : {"[]", R"("bob")", "null", "{}", R"(["bob",7])", R"([["bob"]])", R"(["bad name",null])"}) {
    CAPTURE(users);
    auto error = decode_failure(std::string{R"({"type":"status","users":)"} + users + "}");
    CHECK(error.code == error_code::bad_field);
    CHECK(mentions(error, "users"));
  }
}

TEST_CASE("a status without users is rejected with missing_field") {
  auto error = decode_failure(R"({"type":"status"})");
  CHECK(error.code == error_code::missing_field);
  CHECK(mentions(error, "users"));
}

TEST_CASE("a status naming an invalid user is rejected with invalid_name") {
  for (auto users : {R"(["bob",""])", R"(["al ice"])", R"(["jörg"])"}) {
    CAPTURE(users);
    auto error = decode_failure(std::string{R"({"type":"status","users":)"} + users + "}");
    CHECK(error.code == error_code::invalid_name);
    CHECK(mentions(error, "users"));
  }
}

TEST_CASE("a ping decodes with no other fields") {
  auto in = decode(R"({"type":"ping"})", default_limits);
  CHECK(std::holds_alternative<ping_cmd>(in.cmd));
  CHECK_FALSE(in.ref.has_value());
}

TEST_CASE("a crash_room decodes its room so that the session can decide whether to honour it") {
  CHECK(decode_as<crash_room_cmd>(R"({"type":"crash_room","room":"general"})").room == "general");
  auto error = decode_failure(R"({"type":"crash_room"})");
  CHECK(error.code == error_code::missing_field);
  CHECK(mentions(error, "room"));
}

TEST_CASE("unknown extra fields are ignored") {
  auto cmd = decode_as<join_cmd>(
    R"({"v":2,"type":"join","flags":{"a":[1,2,{"b":null}]},"room":"general","future":"yes"})");
  CHECK(cmd.room == "general");
  auto ping = decode(R"({"type":"ping","extra":[true,false]})", default_limits);
  CHECK(std::holds_alternative<ping_cmd>(ping.cmd));
}

TEST_CASE("whitespace around and inside the frame is accepted") {
  auto cmd = decode_as<leave_cmd>(" \r\n\t{ \"type\" : \"leave\" ,\n \"room\" : \"general\" }\n ");
  CHECK(cmd.room == "general");
}

TEST_CASE("a repeated key takes its last value") {
  CHECK(decode_as<who_cmd>(R"({"type":"who","room":"first","room":"second"})").room == "second");
}

TEST_CASE("a command without a room is rejected with missing_field") {
  for (auto type : {"join", "send", "history", "leave", "who", "typing"}) {
    CAPTURE(type);
    auto error = decode_failure(std::string{R"({"type":")"} + type + R"(","text":"x"})");
    CHECK(error.code == error_code::missing_field);
    CHECK(mentions(error, "room"));
  }
}

TEST_CASE("a room that is not a string is rejected with bad_field") {
  for (auto type : {"join", "send", "history", "leave", "who", "typing", "crash_room"}) {
    CAPTURE(type);
    auto error = decode_failure(std::string{R"({"type":")"} + type + R"(","room":7,"text":"x"})");
    CHECK(error.code == error_code::bad_field);
    CHECK(mentions(error, "room"));
  }
}

TEST_CASE("a room name breaking the naming rule is rejected with invalid_name") {
  for (auto room : {R"("")", R"("my room")", R"("a/b")", R"("caf\u00e9")"}) {
    CAPTURE(room);
    auto error = decode_failure(std::string{R"({"type":"join","room":)"} + room + "}");
    CHECK(error.code == error_code::invalid_name);
    CHECK(mentions(error, "room"));
  }
  auto long_room = json{{"type", "who"}, {"room", std::string(65, 'r')}}.dump();
  CHECK(decode_failure(long_room).code == error_code::invalid_name);
}

TEST_CASE("a negative, fractional, string or null since or epoch is rejected with bad_field") {
  for (auto value : {"-1", "1.5", "1e3", R"("41")", "null", "true"}) {
    for (auto field : {"since", "epoch"}) {
      CAPTURE(value);
      CAPTURE(field);
      auto frame = std::string{R"({"type":"join","room":"r",")"} + field + "\":" + value + "}";
      auto error = decode_failure(frame);
      CHECK(error.code == error_code::bad_field);
      CHECK(mentions(error, field));
    }
  }
}

// -- ref -------------------------------------------------------------------------------------------------

TEST_CASE("a string ref is kept as its raw JSON text") {
  auto in = decode(R"({"type":"ping","ref":"abc"})", default_limits);
  CHECK(in.ref == std::string{R"("abc")"});
}

TEST_CASE("an integer ref is kept as its raw JSON text") {
  CHECK(decode(R"({"type":"ping","ref":42})", default_limits).ref == std::string{"42"});
  CHECK(decode(R"({"type":"ping","ref":-7})", default_limits).ref == std::string{"-7"});
  CHECK(decode(R"({"type":"ping","ref":18446744073709551615})", default_limits).ref
        == std::string{"18446744073709551615"});
}

TEST_CASE("a ref of any type other than string or integer is rejected with bad_field") {
  for (auto ref : {"1.5", "true", "null", "[1]", R"({"a":1})"}) {
    CAPTURE(ref);
    auto in = decode(std::string{R"({"type":"ping","ref":)"} + ref + "}", default_limits);
    REQUIRE(std::holds_alternative<decode_error>(in.cmd));
    CHECK(std::get<decode_error>(in.cmd).code == error_code::bad_field);
    CHECK(mentions(std::get<decode_error>(in.cmd), "ref"));
    CHECK_FALSE(in.ref.has_value());
  }
}

TEST_CASE("a string ref longer than max_ref_bytes is rejected with bad_field") {
  codec_limits limits;
  limits.max_ref_bytes = 3;
  CHECK(decode(R"({"type":"ping","ref":"abc"})", limits).ref == std::string{R"("abc")"});
  auto error = decode_failure(R"({"type":"ping","ref":"abcd"})", limits);
  CHECK(error.code == error_code::bad_field);
  CHECK(mentions(error, "ref"));
}

TEST_CASE("the ref is kept when the rest of the frame is bad so the error can echo it") {
  for (auto frame : {R"({"ref":"r1","type":"nope"})", R"({"ref":"r1"})", R"({"ref":"r1","type":5})",
                     R"({"ref":"r1","type":"join"})", R"({"ref":"r1","type":"join","room":"a b"})",
                     R"({"ref":"r1","type":"join","room":"r","since":-1})",
                     R"({"type":"send","room":"r","text":"","ref":"r1"})"}) {
    CAPTURE(frame);
    auto in = decode(frame, default_limits);
    CHECK(std::holds_alternative<decode_error>(in.cmd));
    CHECK(in.ref == std::string{R"("r1")"});
  }
}

TEST_CASE("a frame without a ref has no ref") {
  CHECK_FALSE(decode(R"({"type":"join","room":"general"})", default_limits).ref.has_value());
  CHECK_FALSE(decode(R"({"type":"nope"})", default_limits).ref.has_value());
}

TEST_CASE("a decoded ref encodes back as the same JSON value") {
  for (auto ref : {R"("abc")", R"("q\"uo\\te \u00e9 \ud83d\ude00 <b>")", "0", "42", "-9223372036854775808",
                   "18446744073709551615"}) {
    CAPTURE(ref);
    auto in = decode(std::string{R"({"type":"ping","ref":)"} + ref + "}", default_limits);
    REQUIRE(std::holds_alternative<ping_cmd>(in.cmd));
    auto original = json::parse(ref);
    CHECK(json::parse(encode(pong_event{in.ref}))["ref"] == original);
    CHECK(json::parse(encode(error_event{error_code::room_full, "full", in.ref}))["ref"] == original);
  }
}

// -- bad input -------------------------------------------------------------------------------------------

TEST_CASE("text that is not JSON is rejected with bad_json") {
  for (auto text : {"", "   ", "{", "nope", "{'type':'ping'}", R"({"type":"ping",})",
                    R"({"type":"ping"} x)", R"({"type":"ping"}{"type":"ping"})",
                    R"({"type":"ping","n":1e400})", "{\"type\":\"pi\nng\"}"}) {
    CAPTURE(text);
    auto in = decode(text, default_limits);
    REQUIRE(std::holds_alternative<decode_error>(in.cmd));
    CHECK(std::get<decode_error>(in.cmd).code == error_code::bad_json);
    CHECK_FALSE(in.ref.has_value());
  }
}

TEST_CASE("JSON that is not an object is rejected with bad_json") {
  for (auto text : {"[]", R"(["type","ping"])", R"("ping")", "42", "null", "true"}) {
    CAPTURE(text);
    CHECK(decode_failure(text).code == error_code::bad_json);
  }
}

TEST_CASE("a frame without type is rejected with missing_field") {
  auto error = decode_failure(R"({"room":"general"})");
  CHECK(error.code == error_code::missing_field);
  CHECK(mentions(error, "type"));
  CHECK(decode_failure("{}").code == error_code::missing_field);
}

TEST_CASE("a type that is not a string is rejected with bad_field") {
  for (auto type : {"1", "null", R"(["ping"])", "{}"}) {
    CAPTURE(type);
    auto error = decode_failure(std::string{R"({"type":)"} + type + "}");
    CHECK(error.code == error_code::bad_field);
    CHECK(mentions(error, "type"));
  }
}

TEST_CASE("an unknown type is rejected with unknown_type") {
  // Types are case-sensitive, and server-to-client types are not commands.
  for (auto type : {"nope", "PING", "", "message", "welcome", "ping "}) {
    CAPTURE(type);
    auto error = decode_failure(json{{"type", type}, {"room", "r"}}.dump());
    CHECK(error.code == error_code::unknown_type);
    CHECK(mentions(error, "type"));
  }
}

TEST_CASE("nesting at the depth limit is accepted and one level deeper is too_deep") {
  codec_limits limits;
  limits.max_depth = 8;
  CHECK(std::holds_alternative<ping_cmd>(decode(ping_with_depth(8), limits).cmd));
  CHECK(decode_failure(ping_with_depth(9), limits).code == error_code::too_deep);

  limits.max_depth = 1;
  CHECK(std::holds_alternative<ping_cmd>(decode(R"({"type":"ping","x":1})", limits).cmd));
  CHECK(decode_failure(R"({"type":"ping","x":{}})", limits).code == error_code::too_deep);
}

TEST_CASE("a 100k-deep array is rejected with too_deep quickly and without crashing") {
  const auto start = std::chrono::steady_clock::now();
  auto closed = decode(nested_arrays(100'000), default_limits);
  auto unterminated = decode(nested_arrays(100'000, false), default_limits);
  auto inside_command = decode(ping_with_depth(100'000), default_limits);
  const auto elapsed = std::chrono::steady_clock::now() - start;

  for (auto* in : {&closed, &unterminated, &inside_command}) {
    REQUIRE(std::holds_alternative<decode_error>(in->cmd));
    CHECK(std::get<decode_error>(in->cmd).code == error_code::too_deep);
  }
  // Aborting at the limit takes microseconds; a generous bound still catches building the tree.
  CHECK(elapsed < std::chrono::milliseconds(250));
}

TEST_CASE("a 100k-deep object under a valid command is rejected with too_deep") {
  std::string deep;
  for (int i = 0; i < 100'000; ++i)
    deep += R"({"a":)";
  deep += "1";
  deep.append(100'000, '}');
  auto in = decode(R"({"ref":"d","type":"ping","x":)" + deep + "}", default_limits);
  REQUIRE(std::holds_alternative<decode_error>(in.cmd));
  CHECK(std::get<decode_error>(in.cmd).code == error_code::too_deep);
  // The object never finished parsing, so its ref was never read.
  CHECK_FALSE(in.ref.has_value());
}

TEST_CASE("invalid UTF-8 is rejected with bad_json without crashing") {
  for (const std::string& text : {
         send_with_raw_text("\xFF"),
         send_with_raw_text("\xC3"),              // truncated sequence
         send_with_raw_text("\xC0\xAF"),          // overlong '/'
         send_with_raw_text("\xED\xA0\x80"),      // encoded surrogate
         send_with_raw_text(R"(\ud800)"),         // lone surrogate escape
         std::string{"{\"\xFE\":1,\"type\":\"ping\"}"}, // in a key
       }) {
    CAPTURE(text);
    CHECK(decode_failure(text).code == error_code::bad_json);
  }
}

TEST_CASE("a NUL byte and other control characters in text survive decoding") {
  auto cmd = decode_as<send_cmd>(R"({"type":"send","room":"r","text":"a\u0000b\u001fc"})");
  CHECK(cmd.text == std::string("a\0b\x1f" "c", 5));
}

TEST_CASE("decoding arbitrary mutations of valid frames never throws") {
  const std::string seeds[] = {
    R"({"type":"send","room":"general","text":"h\u00e9llo \"x\"","cid":"c1","ref":7})",
    R"({"type":"history","room":"r","before":10,"limit":5,"ref":"a"})",
    R"({"type":"join","room":"r","since":1,"epoch":2,"x":[[{"y":null}]]})",
  };
  // A fixed linear congruential generator keeps the inputs reproducible.
  uint64_t state = 0x9E3779B97F4A7C15u;
  auto next = [&state] {
    state = state * 6364136223846793005u + 1442695040888963407u;
    return static_cast<uint32_t>(state >> 33);
  };
  std::size_t errors = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string text = seeds[round % 3];
    for (int edits = 1 + next() % 4; edits > 0; --edits) {
      const std::size_t at = next() % (text.size() + 1);
      switch (next() % 3) {
        case 0: text.insert(text.begin() + at, static_cast<char>(next() % 256)); break;
        case 1: if (at < text.size()) text.erase(at, 1); break;
        default: if (at < text.size()) text[at] = static_cast<char>(next() % 256); break;
      }
    }
    inbound in;
    REQUIRE_NOTHROW(in = decode(text, default_limits));
    errors += std::holds_alternative<decode_error>(in.cmd) ? 1 : 0;
  }
  // Most mutations break the frame; the decoder must have reported that instead of passing them on.
  CHECK(errors > 1500);
}

TEST_CASE("a binary frame becomes binary_not_supported with no ref") {
  auto in = binary_frame_error();
  REQUIRE(std::holds_alternative<decode_error>(in.cmd));
  CHECK(std::get<decode_error>(in.cmd).code == error_code::binary_not_supported);
  CHECK_FALSE(std::get<decode_error>(in.cmd).message.empty());
  CHECK_FALSE(in.ref.has_value());
}

// -- events ----------------------------------------------------------------------------------------------

TEST_CASE("welcome encodes user and session") {
  auto out = json::parse(encode(welcome_event{"alice", "3f2a9c"}));
  CHECK(out == json{{"type", "welcome"}, {"user", "alice"}, {"session", "3f2a9c"}});
}

TEST_CASE("joined encodes epoch, last_id, count, presence, the first page and history as message objects") {
  joined_event ev;
  ev.room = "general";
  ev.epoch = 3;
  ev.last_id = 7;
  ev.presence = presence_summary{5, presence_mode::users, {"alice", "bob"}};
  ev.history = {encoded(sample_message())};
  auto out = json::parse(encode(ev));
  CHECK(out["type"] == "joined");
  CHECK(out["room"] == "general");
  CHECK(out["epoch"] == 3);
  CHECK(out["last_id"] == 7);
  CHECK(out["count"] == 5);
  CHECK(out["presence"] == "users");
  CHECK(out["members"] == json{"alice", "bob"});
  CHECK(out["history"] == json::array({json::parse(encode(sample_message()))}));
  CHECK_FALSE(out.contains("recovered"));
  CHECK_FALSE(out.contains("ref"));
}

TEST_CASE("joined in counts mode carries the count and no members") {
  joined_event ev;
  ev.room = "lobby";
  ev.presence = presence_summary{1001, presence_mode::counts, {"ignored"}};
  auto out = json::parse(encode(ev));
  CHECK(out["count"] == 1001);
  CHECK(out["presence"] == "counts");
  CHECK_FALSE(out.contains("members"));
}

TEST_CASE("joined with no members and no history encodes empty arrays") {
  joined_event ev;
  ev.room = "r";
  auto out = json::parse(encode(ev));
  CHECK(out["count"] == 0);
  CHECK(out["members"] == json::array());
  CHECK(out["history"] == json::array());
}

TEST_CASE("joined includes recovered and ref only when they are set") {
  joined_event ev;
  ev.room = "general";
  ev.recovered = false;
  ev.ref = R"("j1")";
  auto out = json::parse(encode(ev));
  CHECK(out["recovered"] == false);
  CHECK(out["ref"] == "j1");
  ev.recovered = true;
  ev.ref = "-12";
  CHECK(json::parse(encode(ev))["recovered"] == true);
  CHECK(json::parse(encode(ev))["ref"] == -12);
}

TEST_CASE("a joined with spliced history is byte for byte the frame a JSON library dumps for it") {
  auto first = sample_message();
  auto second = sample_message();
  second.id = 8;
  second.cid.clear();
  second.text = "quote \" and caf\xC3\xA9 </script>";
  for (bool with_extras : {false, true}) {
    CAPTURE(with_extras);
    joined_event ev;
    ev.room = "general";
    ev.epoch = 8804413205;
    ev.last_id = 8;
    ev.presence = presence_summary{2, presence_mode::users, {"alice", "bob"}};
    ev.history = {encoded(first), encoded(second)};
    nlohmann::ordered_json normal{{"type", "joined"}, {"room", "general"}, {"epoch", 8804413205},
                                  {"last_id", 8},     {"count", 2},        {"presence", "users"},
                                  {"members", {"alice", "bob"}}};
    normal["history"] = nlohmann::ordered_json::array(
      {nlohmann::ordered_json::parse(encode(first)), nlohmann::ordered_json::parse(encode(second))});
    if (with_extras) {
      ev.recovered = true;
      ev.ref = R"("j2")";
      normal["recovered"] = true;
      normal["ref"] = "j2";
    }
    CHECK(encode(ev) == normal.dump());
  }
  joined_event empty;
  empty.room = "r";
  empty.presence.mode = presence_mode::counts;
  CHECK(encode(empty) == R"({"type":"joined","room":"r","epoch":0,"last_id":0,"count":0,"presence":"counts","history":[]})");
}

TEST_CASE("a chat message encodes every field, with cid only when non-empty") {
  auto out = json::parse(encode(sample_message()));
  CHECK(out == json{{"type", "message"}, {"room", "general"}, {"id", 7}, {"from", "alice"},
                    {"text", "hello"}, {"ts", 1700000000123}, {"cid", "c-1"}});
  auto without_cid = sample_message();
  without_cid.cid.clear();
  CHECK_FALSE(json::parse(encode(without_cid)).contains("cid"));
}

TEST_CASE("left encodes room, reason and ref") {
  CHECK(json::parse(encode(left_event{"general", "left", R"("l1")"}))
        == json{{"type", "left"}, {"room", "general"}, {"reason", "left"}, {"ref", "l1"}});
  CHECK(json::parse(encode(left_event{"general", "room_failed", std::nullopt}))
        == json{{"type", "left"}, {"room", "general"}, {"reason", "room_failed"}});
}

TEST_CASE("history encodes messages oldest first, more and ref") {
  auto older = sample_message();
  older.id = 5;
  auto newer = sample_message();
  newer.id = 6;
  auto out = json::parse(encode(history_event{"general", {older, newer}, true, "9"}));
  CHECK(out["type"] == "history");
  CHECK(out["room"] == "general");
  REQUIRE(out["messages"].size() == 2);
  CHECK(out["messages"][0]["id"] == 5);
  CHECK(out["messages"][1]["id"] == 6);
  CHECK(out["messages"][0]["type"] == "message");
  CHECK(out["more"] == true);
  CHECK(out["ref"] == 9);
  CHECK(json::parse(encode(history_event{"general", {}, false, std::nullopt}))
        == json{{"type", "history"}, {"room", "general"}, {"messages", json::array()}, {"more", false}});
}

TEST_CASE("who encodes members, count, more and ref") {
  CHECK(json::parse(encode(who_event{"general", {"alice", "bob"}, 3, true, R"("w")"}))
        == json{{"type", "who"}, {"room", "general"}, {"members", {"alice", "bob"}}, {"count", 3},
                {"more", true}, {"ref", "w"}});
  auto last = json::parse(encode(who_event{"general", {}, 0, false, std::nullopt}));
  CHECK(last["members"] == json::array());
  CHECK(last["more"] == false);
  CHECK_FALSE(last.contains("ref"));
}

TEST_CASE("a presence_diff in users mode always carries joins and leaves, even empty, and the count") {
  CHECK(encode(presence_diff_event{"general", presence_mode::users, {"carol"}, {"bob"}, 2})
        == R"({"type":"presence_diff","room":"general","joins":["carol"],"leaves":["bob"],"count":2})");
  CHECK(json::parse(encode(presence_diff_event{"general", presence_mode::users, {}, {"bob"}, 1}))
        == json{{"type", "presence_diff"}, {"room", "general"}, {"joins", json::array()},
                {"leaves", {"bob"}}, {"count", 1}});
}

TEST_CASE("a presence_diff in counts mode carries only the count") {
  CHECK(encode(presence_diff_event{"lobby", presence_mode::counts, {"x"}, {"y"}, 10234})
        == R"({"type":"presence_diff","room":"lobby","count":10234})");
}

TEST_CASE("a presence_state carries the presence fields of joined") {
  CHECK(encode(presence_state_event{"general", {3, presence_mode::users, {"alice", "bob", "carol"}}})
        == R"({"type":"presence_state","room":"general","count":3,"presence":"users","members":["alice","bob","carol"]})");
  CHECK(encode(presence_state_event{"lobby", {1001, presence_mode::counts, {}}})
        == R"({"type":"presence_state","room":"lobby","count":1001,"presence":"counts"})");
}

TEST_CASE("status encodes one entry per user in the order asked, and the ref") {
  status_event ev{{{"bob", true, 2}, {"carol", false, 0}, {"dave", true, 0}}, R"("s1")"};
  CHECK(encode(ev) == R"({"type":"status","users":[{"user":"bob","online":true,"sessions":2},)"
                      R"({"user":"carol","online":false,"sessions":0},{"user":"dave","online":true,"sessions":0}],"ref":"s1"})");
  CHECK_FALSE(json::parse(encode(status_event{{{"bob", false, 0}}, std::nullopt})).contains("ref"));
}

TEST_CASE("typing encodes room and user") {
  CHECK(json::parse(encode(typing_event{"general", "carol"}))
        == json{{"type", "typing"}, {"room", "general"}, {"user", "carol"}});
}

TEST_CASE("a notice encodes room, text and time, with the text escaped as JSON") {
  auto frame = encode(notice_event{"general", "back in \"5\" min\n<b>", 1764594000000});
  CHECK(frame.rfind(R"({"type":"notice",)", 0) == 0);
  CHECK(json::parse(frame) == json{{"type", "notice"}, {"room", "general"},
                                   {"text", "back in \"5\" min\n<b>"}, {"ts", 1764594000000}});
}

TEST_CASE("pong echoes the ref and omits it when absent") {
  CHECK(json::parse(encode(pong_event{"42"})) == json{{"type", "pong"}, {"ref", 42}});
  CHECK(json::parse(encode(pong_event{})) == json{{"type", "pong"}});
}

TEST_CASE("an error always carries a ref key, null when the client sent none") {
  auto with_ref = json::parse(encode(error_event{error_code::room_full, "room is full", R"("x")"}));
  CHECK(with_ref
        == json{{"type", "error"}, {"code", "room_full"}, {"message", "room is full"}, {"ref", "x"}});
  auto without_ref = json::parse(encode(error_event{error_code::bad_json, "not JSON", std::nullopt}));
  REQUIRE(without_ref.contains("ref"));
  CHECK(without_ref["ref"].is_null());
  CHECK(without_ref["code"] == "bad_json");
}

TEST_CASE("a hand-built ref that is not a JSON string or integer is sent as null") {
  for (auto raw : {"abc", "", "[1]", "1.5", "\"unterminated", "[[[[[[[[[["}) {
    CAPTURE(raw);
    CHECK(json::parse(encode(error_event{error_code::internal, "x", std::string{raw}}))["ref"].is_null());
    CHECK(json::parse(encode(pong_event{std::string{raw}}))["ref"].is_null());
  }
}

TEST_CASE("encoded frames are compact JSON with type first") {
  CHECK(encode(typing_event{"general", "carol"}) == R"({"type":"typing","room":"general","user":"carol"})");
  CHECK(encode(pong_event{R"("p")"}) == R"({"type":"pong","ref":"p"})");
  CHECK(encode(sample_message()).rfind(R"({"type":"message",)", 0) == 0);
}

TEST_CASE("text with quotes, backslashes, control characters, script tags and non-ASCII "
          "round-trips exactly") {
  const std::string text = std::string{"say \"hi\" \\ back\\slash\n\t\r\b\f"} + '\x01' + '\x1f'
                           + "</script><script>alert(1)</script> caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 "
                           + std::string("nul\0end", 7);
  // Client to server: the text the client put in JSON is the text the server gets.
  auto cmd = decode_as<send_cmd>(json{{"type", "send"}, {"room", "r"}, {"text", text}}.dump());
  CHECK(cmd.text == text);
  // Server to client: the text in the message frame is the same again.
  auto msg = sample_message();
  msg.text = cmd.text;
  msg.from = "alice";
  CHECK(json::parse(encode(msg))["text"].get<std::string>() == text);
  // And in a history page.
  auto page = json::parse(encode(history_event{"r", {msg}, false, std::nullopt}));
  CHECK(page["messages"][0]["text"].get<std::string>() == text);
}

TEST_CASE("encoding a string with invalid UTF-8 does not throw and replaces the bad bytes") {
  auto msg = sample_message();
  msg.text = "ok\xFF" "end";
  std::string out;
  REQUIRE_NOTHROW(out = encode(msg));
  CHECK(json::parse(out)["text"] == "ok\xEF\xBF\xBD" "end");
}

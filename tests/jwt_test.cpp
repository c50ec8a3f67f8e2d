// Tests of JWT verification and signing (auth/jwt.hpp), the codec's token JSON and `parley token`'s
// building blocks. Keys are made here with OpenSSL at test time; the repository holds none.
//
// Tokens that sign_token cannot produce (alg none, wrong claim types, odd encodings) are put
// together by hand with this file's own base64url and HMAC, so they do not share bugs with the code
// under test.

#include "auth/jwt.hpp"
#include "auth/token_command.hpp"
#include "protocol/codec.hpp"

#include <doctest/doctest.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace doctest {
template <>
struct StringMaker<parley::auth::token_problem> {
  static String convert(parley::auth::token_problem p) { return parley::auth::to_string(p); }
};
} // namespace doctest

namespace {

using namespace parley::auth;
namespace fs = std::filesystem;

constexpr int64_t now = 1'800'000'000;
const std::string secret = "0123456789abcdef0123456789abcdef-parley-test";

// -- keys ----------------------------------------------------------------------------------------

struct key_pair {
  std::string private_pem;
  std::string public_pem;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string{data, static_cast<std::size_t>(len)};
}

/// A fresh key as PEM text. `type` and `param` as for EVP_PKEY_Q_keygen.
key_pair make_key(EVP_PKEY* pkey) {
  REQUIRE(pkey != nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> priv{BIO_new(BIO_s_mem()), BIO_free};
  std::unique_ptr<BIO, decltype(&BIO_free)> pub{BIO_new(BIO_s_mem()), BIO_free};
  REQUIRE(PEM_write_bio_PrivateKey(priv.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  REQUIRE(PEM_write_bio_PUBKEY(pub.get(), pkey) == 1);
  key_pair pair{bio_text(priv.get()), bio_text(pub.get())};
  EVP_PKEY_free(pkey);
  return pair;
}

/// Made once per run: RSA key generation is slow under the sanitizers.
const key_pair& rsa_key() {
  static const key_pair pair = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return pair;
}
const key_pair& ec_key() {
  static const key_pair pair = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return pair;
}
const key_pair& ec384_key() {
  static const key_pair pair = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  return pair;
}
const key_pair& ed25519_key() {
  static const key_pair pair = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  return pair;
}

// -- hand-made tokens ----------------------------------------------------------------------------

/// Unpadded base64url through OpenSSL's plain base64, independent of jwt.cpp's encoder.
std::string b64url(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(len));
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  REQUIRE(EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                    reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof mac,
                    &len)
          != nullptr);
  return std::string{reinterpret_cast<const char*>(mac), len};
}

/// An HS256 token over any header and payload JSON text.
std::string hs256_token(const std::string& header_json, const std::string& payload_json,
                        const std::string& key = secret) {
  std::string input = b64url(header_json) + "." + b64url(payload_json);
  return input + "." + b64url(hmac(key, input));
}

std::string hs256_payload(const std::string& payload_json) {
  return hs256_token(R"({"alg":"HS256","typ":"JWT"})", payload_json);
}

std::vector<std::string> split(const std::string& token) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    auto dot = token.find('.', start);
    parts.push_back(token.substr(start, dot - start));
    if (dot == std::string::npos)
      return parts;
    start = dot + 1;
  }
}

// -- settings ------------------------------------------------------------------------------------

verifier_settings hs256_settings() {
  verifier_settings s;
  s.algorithm = jwt_algorithm::hs256;
  s.secret = secret;
  return s;
}

verifier_settings pem_settings(jwt_algorithm alg, const std::string& public_pem) {
  verifier_settings s;
  s.algorithm = alg;
  s.public_key_pem = public_pem;
  return s;
}

token_claims alice_claims() {
  token_claims c;
  c.sub = "alice";
  c.name = "Alice Liddell";
  c.exp = now + 600;
  c.iat = now;
  c.roles = {"moderator", "member"};
  c.rooms = {"team-a", "team-b"};
  return c;
}

token_problem refusal(const jwt_verifier& v, const std::string& token) {
  auto result = v.verify(token, now);
  REQUIRE_FALSE(result);
  return result.problem;
}

/// Signs alice's claims with `alg` and checks that every claim comes through `v`.
void check_round_trip(jwt_algorithm alg, const std::string& signing_key, const jwt_verifier& v) {
  auto token = sign_token(alice_claims(), alg, signing_key);
  CHECK(split(token).size() == 3);
  auto result = v.verify(token, now);
  REQUIRE_MESSAGE(result, to_string(result.problem));
  CHECK(result.who->user == "alice");
  CHECK(result.who->display_name == "Alice Liddell");
  CHECK(result.who->roles
        == (static_cast<role_set>(role::moderator) | static_cast<role_set>(role::member)));
  CHECK(result.who->rooms == std::vector<std::string>{"team-a", "team-b"});
  CHECK(result.who->expires_at == now + 600);
}

/// The same token with one bit of its signature flipped.
std::string flip_signature_bit(const std::string& token) {
  auto parts = split(token);
  // The first character carries six whole bits of the signature, so changing it always changes
  // the bytes (a trailing character might only change padding bits, which is malformed instead).
  parts[2][0] = parts[2][0] == 'A' ? 'B' : 'A';
  return parts[0] + "." + parts[1] + "." + parts[2];
}

} // namespace

// -- every algorithm -------------------------------------------------------------------------------

TEST_CASE("an HS256 token made by sign_token verifies with its sub, name, roles, rooms and exp") {
  jwt_verifier v{hs256_settings()};
  check_round_trip(jwt_algorithm::hs256, secret, v);
}

TEST_CASE("an RS256 token made by sign_token verifies with its sub, name, roles, rooms and exp") {
  jwt_verifier v{pem_settings(jwt_algorithm::rs256, rsa_key().public_pem)};
  check_round_trip(jwt_algorithm::rs256, rsa_key().private_pem, v);
}

TEST_CASE("an ES256 token made by sign_token verifies with its sub, name, roles, rooms and exp") {
  jwt_verifier v{pem_settings(jwt_algorithm::es256, ec_key().public_pem)};
  // ECDSA signatures are random and r or s is sometimes short: sign several to cover the padding.
  for (int i = 0; i < 20; ++i)
    check_round_trip(jwt_algorithm::es256, ec_key().private_pem, v);
  auto token = sign_token(alice_claims(), jwt_algorithm::es256, ec_key().private_pem);
  std::string signature = split(token)[2];
  CHECK(signature.size() == 86);  // 64 raw bytes, unpadded base64url
}

TEST_CASE("an EdDSA token made by sign_token verifies with its sub, name, roles, rooms and exp") {
  jwt_verifier v{pem_settings(jwt_algorithm::eddsa, ed25519_key().public_pem)};
  check_round_trip(jwt_algorithm::eddsa, ed25519_key().private_pem, v);
}

TEST_CASE("a hand-made HS256 token verifies, so sign_token and verify do not merely agree with each other") {
  jwt_verifier v{hs256_settings()};
  auto result = v.verify(hs256_payload(R"({"sub":"bob","exp":1800000600})"), now);
  REQUIRE(result);
  CHECK(result.who->user == "bob");
  CHECK(result.who->display_name.empty());
  CHECK(result.who->roles == static_cast<role_set>(role::member));
  CHECK(result.who->rooms.empty());
}

TEST_CASE("a token with one signature bit flipped is refused as bad_signature for every algorithm") {
  SUBCASE("HS256") {
    jwt_verifier v{hs256_settings()};
    CHECK(refusal(v, flip_signature_bit(sign_token(alice_claims(), jwt_algorithm::hs256, secret)))
          == token_problem::bad_signature);
  }
  SUBCASE("RS256") {
    jwt_verifier v{pem_settings(jwt_algorithm::rs256, rsa_key().public_pem)};
    auto token = sign_token(alice_claims(), jwt_algorithm::rs256, rsa_key().private_pem);
    CHECK(refusal(v, flip_signature_bit(token)) == token_problem::bad_signature);
  }
  SUBCASE("ES256") {
    jwt_verifier v{pem_settings(jwt_algorithm::es256, ec_key().public_pem)};
    auto token = sign_token(alice_claims(), jwt_algorithm::es256, ec_key().private_pem);
    CHECK(refusal(v, flip_signature_bit(token)) == token_problem::bad_signature);
  }
  SUBCASE("EdDSA") {
    jwt_verifier v{pem_settings(jwt_algorithm::eddsa, ed25519_key().public_pem)};
    auto token = sign_token(alice_claims(), jwt_algorithm::eddsa, ed25519_key().private_pem);
    CHECK(refusal(v, flip_signature_bit(token)) == token_problem::bad_signature);
  }
}

TEST_CASE("a token signed with another key of the right type is refused as bad_signature") {
  jwt_verifier v{pem_settings(jwt_algorithm::es256, ec_key().public_pem)};
  auto other = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  CHECK(refusal(v, sign_token(alice_claims(), jwt_algorithm::es256, other.private_pem))
        == token_problem::bad_signature);
  jwt_verifier hs{hs256_settings()};
  CHECK(refusal(hs, sign_token(alice_claims(), jwt_algorithm::hs256, secret + "x"))
        == token_problem::bad_signature);
}

TEST_CASE("an ES256 signature in DER form or of any length but 64 bytes is refused as bad_signature") {
  jwt_verifier v{pem_settings(jwt_algorithm::es256, ec_key().public_pem)};
  auto parts = split(sign_token(alice_claims(), jwt_algorithm::es256, ec_key().private_pem));
  auto input = parts[0] + "." + parts[1];
  CHECK(refusal(v, input + "." + b64url(std::string(63, 'x'))) == token_problem::bad_signature);
  CHECK(refusal(v, input + "." + b64url(std::string(72, 'x'))) == token_problem::bad_signature);
  CHECK(refusal(v, input + ".") == token_problem::bad_signature);
}

TEST_CASE("a payload re-encoded under the old signature is refused as bad_signature") {
  jwt_verifier v{hs256_settings()};
  auto parts = split(sign_token(alice_claims(), jwt_algorithm::hs256, secret));
  auto forged = alice_claims();
  forged.roles = {"admin"};
  auto payload = b64url(parley::protocol::encode_token_claims(forged, "roles", "rooms"));
  CHECK(refusal(v, parts[0] + "." + payload + "." + parts[2]) == token_problem::bad_signature);

  jwt_verifier ed{pem_settings(jwt_algorithm::eddsa, ed25519_key().public_pem)};
  auto ed_parts = split(sign_token(alice_claims(), jwt_algorithm::eddsa, ed25519_key().private_pem));
  CHECK(refusal(ed, ed_parts[0] + "." + payload + "." + ed_parts[2]) == token_problem::bad_signature);
}

// -- the algorithm is the configuration's ----------------------------------------------------------

TEST_CASE("a token with alg none and an empty signature is refused as wrong_algorithm") {
  jwt_verifier v{hs256_settings()};
  auto payload = b64url(R"({"sub":"alice","exp":1800000600})");
  CHECK(refusal(v, b64url(R"({"alg":"none","typ":"JWT"})") + "." + payload + ".")
        == token_problem::wrong_algorithm);
  jwt_verifier rs{pem_settings(jwt_algorithm::rs256, rsa_key().public_pem)};
  CHECK(refusal(rs, b64url(R"({"alg":"none"})") + "." + payload + ".") == token_problem::wrong_algorithm);
}

TEST_CASE("an HS256 token keyed with the RS256 public key PEM is refused by an RS256 verifier as wrong_algorithm") {
  // The classic confusion: a verifier that took alg from the token would use the public key, which
  // everyone has, as an HMAC secret.
  jwt_verifier v{pem_settings(jwt_algorithm::rs256, rsa_key().public_pem)};
  auto token = hs256_token(R"({"alg":"HS256","typ":"JWT"})", R"({"sub":"mallory","exp":1800000600,"roles":"admin"})",
                           rsa_key().public_pem);
  CHECK(refusal(v, token) == token_problem::wrong_algorithm);
  // sign_token gives the same token shape; it is refused the same way.
  CHECK(refusal(v, sign_token(alice_claims(), jwt_algorithm::hs256, rsa_key().public_pem))
        == token_problem::wrong_algorithm);
}

TEST_CASE("a token of any algorithm but the configured one is refused as wrong_algorithm") {
  jwt_verifier hs{hs256_settings()};
  CHECK(refusal(hs, sign_token(alice_claims(), jwt_algorithm::rs256, rsa_key().private_pem))
        == token_problem::wrong_algorithm);
  jwt_verifier es{pem_settings(jwt_algorithm::es256, ec_key().public_pem)};
  CHECK(refusal(es, sign_token(alice_claims(), jwt_algorithm::eddsa, ed25519_key().private_pem))
        == token_problem::wrong_algorithm);
  for (auto alg : {"hs256", "HS384", "ES256K", "", "RS256 "}) {
    CAPTURE(alg);
    CHECK(refusal(hs, hs256_token(std::string{R"({"alg":")"} + alg + "\"}",
                                  R"({"sub":"alice","exp":1800000600})"))
          == token_problem::wrong_algorithm);
  }
}

TEST_CASE("the algorithm is checked before the signature and the signature before the claims") {
  jwt_verifier v{hs256_settings()};
  // Wrong alg and a garbage signature: the algorithm is what is reported.
  CHECK(refusal(v, b64url(R"({"alg":"RS256"})") + "." + b64url("{}") + ".AAAA")
        == token_problem::wrong_algorithm);
  // Unparseable claims under a wrong signature: the signature is what is reported, because an
  // unauthenticated payload is never parsed.
  CHECK(refusal(v, b64url(R"({"alg":"HS256"})") + "." + b64url("not json") + ".AAAA")
        == token_problem::bad_signature);
}

// -- claims ----------------------------------------------------------------------------------------

TEST_CASE("a token without exp is refused as missing_expiry") {
  jwt_verifier v{hs256_settings()};
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice"})")) == token_problem::missing_expiry);
  auto claims = alice_claims();
  claims.exp.reset();
  CHECK(refusal(v, sign_token(claims, jwt_algorithm::hs256, secret)) == token_problem::missing_expiry);
}

TEST_CASE("an expired token is refused, but one expired within the leeway is accepted") {
  jwt_verifier v{hs256_settings()};  // leeway 30 s
  auto token_expiring_at = [](int64_t exp) {
    auto claims = alice_claims();
    claims.exp = exp;
    return sign_token(claims, jwt_algorithm::hs256, secret);
  };
  CHECK(refusal(v, token_expiring_at(now - 3600)) == token_problem::expired);
  CHECK(refusal(v, token_expiring_at(now - 31)) == token_problem::expired);
  CHECK(v.verify(token_expiring_at(now - 30), now));
  CHECK(v.verify(token_expiring_at(now - 1), now));
  CHECK(v.verify(token_expiring_at(now), now));

  auto strict_settings = hs256_settings();
  strict_settings.leeway = std::chrono::seconds{0};
  jwt_verifier strict{std::move(strict_settings)};
  CHECK(strict.verify(token_expiring_at(now), now));
  CHECK(refusal(strict, token_expiring_at(now - 1)) == token_problem::expired);
}

TEST_CASE("an exp or nbf at the ends of the integer range neither overflows nor passes") {
  jwt_verifier v{hs256_settings()};
  CHECK(v.verify(hs256_payload(R"({"sub":"alice","exp":9223372036854775807})"), now));
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":-9223372036854775808})")) == token_problem::expired);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":9223372036854775807,"nbf":9223372036854775807})"))
        == token_problem::not_yet_valid);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":9223372036854775808})")) == token_problem::malformed);
}

TEST_CASE("a token whose nbf is in the future is refused as not_yet_valid, unless within the leeway") {
  jwt_verifier v{hs256_settings()};
  auto token_valid_from = [](int64_t nbf) {
    auto claims = alice_claims();
    claims.nbf = nbf;
    return sign_token(claims, jwt_algorithm::hs256, secret);
  };
  CHECK(refusal(v, token_valid_from(now + 31)) == token_problem::not_yet_valid);
  CHECK(refusal(v, token_valid_from(now + 500)) == token_problem::not_yet_valid);
  CHECK(v.verify(token_valid_from(now + 30), now));
  CHECK(v.verify(token_valid_from(now - 100), now));
}

TEST_CASE("a configured issuer must match iss exactly; without one iss is not checked") {
  auto settings = hs256_settings();
  settings.issuer = "https://id.example.com";
  jwt_verifier v{std::move(settings)};
  auto token_from = [](const std::string& iss) {
    auto claims = alice_claims();
    claims.iss = iss;
    return sign_token(claims, jwt_algorithm::hs256, secret);
  };
  CHECK(v.verify(token_from("https://id.example.com"), now));
  CHECK(refusal(v, token_from("https://id.example.com/")) == token_problem::wrong_issuer);
  CHECK(refusal(v, token_from("https://evil.example.com")) == token_problem::wrong_issuer);
  CHECK(refusal(v, token_from("")) == token_problem::wrong_issuer);

  jwt_verifier unchecked{hs256_settings()};
  CHECK(unchecked.verify(token_from("https://anyone.example.com"), now));
}

TEST_CASE("a configured audience must be aud or one of the aud array; without one aud is not checked") {
  auto settings = hs256_settings();
  settings.audience = "parley";
  jwt_verifier v{std::move(settings)};
  CHECK(v.verify(hs256_payload(R"({"sub":"alice","exp":1800000600,"aud":"parley"})"), now));
  CHECK(v.verify(hs256_payload(R"({"sub":"alice","exp":1800000600,"aud":["mail","parley"]})"), now));
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":1800000600,"aud":"mail"})"))
        == token_problem::wrong_audience);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":1800000600,"aud":["mail","chat"]})"))
        == token_problem::wrong_audience);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":1800000600,"aud":[]})"))
        == token_problem::wrong_audience);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice","exp":1800000600})")) == token_problem::wrong_audience);

  jwt_verifier unchecked{hs256_settings()};
  CHECK(unchecked.verify(hs256_payload(R"({"sub":"alice","exp":1800000600,"aud":"mail"})"), now));
}

TEST_CASE("a token without sub or with a sub that is not a user name is refused as bad_subject") {
  jwt_verifier v{hs256_settings()};
  CHECK(refusal(v, hs256_payload(R"({"exp":1800000600})")) == token_problem::bad_subject);
  CHECK(refusal(v, hs256_payload(R"({"sub":"","exp":1800000600})")) == token_problem::bad_subject);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice smith","exp":1800000600})")) == token_problem::bad_subject);
  CHECK(refusal(v, hs256_payload(R"({"sub":"alice\u0000","exp":1800000600})")) == token_problem::bad_subject);
  CHECK(refusal(v, hs256_payload(R"({"sub":")" + std::string(33, 'a') + R"(","exp":1800000600})"))
        == token_problem::bad_subject);
  CHECK(v.verify(hs256_payload(R"({"sub":")" + std::string(32, 'a') + R"(","exp":1800000600})"), now));
}

TEST_CASE("roles map to the role set, unknown names are ignored and none known means member") {
  jwt_verifier v{hs256_settings()};
  auto roles_of = [&](const std::string& roles_json) {
    auto result = v.verify(hs256_payload(R"({"sub":"alice","exp":1800000600,"roles":)" + roles_json + "}"), now);
    REQUIRE(result);
    return result.who->roles;
  };
  CHECK(roles_of(R"("admin")") == static_cast<role_set>(role::admin));
  CHECK(roles_of(R"(["readonly"])") == static_cast<role_set>(role::readonly));
  CHECK(roles_of(R"(["moderator","superuser"])") == static_cast<role_set>(role::moderator));
  CHECK(roles_of(R"(["superuser","Admin"])") == static_cast<role_set>(role::member));
  CHECK(roles_of(R"([])") == static_cast<role_set>(role::member));
}

TEST_CASE("the roles and rooms claims are read under their configured names") {
  auto settings = hs256_settings();
  settings.roles_claim = "https://parley/roles";
  settings.rooms_claim = "groups";
  jwt_verifier v{std::move(settings)};
  auto token = sign_token(alice_claims(), jwt_algorithm::hs256, secret, "https://parley/roles", "groups");
  auto result = v.verify(token, now);
  REQUIRE(result);
  CHECK(has(result.who->roles, role::moderator));
  CHECK(result.who->rooms.size() == 2);
  // Under the default names the same claims mean nothing to this verifier.
  auto plain = v.verify(sign_token(alice_claims(), jwt_algorithm::hs256, secret), now);
  REQUIRE(plain);
  CHECK(plain.who->roles == static_cast<role_set>(role::member));
  CHECK(plain.who->rooms.empty());
}

TEST_CASE("a display name longer than 64 bytes makes the token malformed") {
  jwt_verifier v{hs256_settings()};
  auto claims = alice_claims();
  claims.name = std::string(64, 'n');
  CHECK(v.verify(sign_token(claims, jwt_algorithm::hs256, secret), now));
  claims.name += 'n';
  CHECK(refusal(v, sign_token(claims, jwt_algorithm::hs256, secret)) == token_problem::malformed);
}

// -- malformed tokens --------------------------------------------------------------------------------

TEST_CASE("tokens that are not three unpadded base64url parts are refused as malformed") {
  jwt_verifier v{hs256_settings()};
  auto good = sign_token(alice_claims(), jwt_algorithm::hs256, secret);
  REQUIRE(v.verify(good, now));
  auto parts = split(good);
  CHECK(refusal(v, "") == token_problem::malformed);
  CHECK(refusal(v, "..") == token_problem::malformed);
  CHECK(refusal(v, parts[0] + "." + parts[1]) == token_problem::malformed);
  CHECK(refusal(v, good + ".") == token_problem::malformed);
  CHECK(refusal(v, good + "." + parts[2]) == token_problem::malformed);
  CHECK(refusal(v, parts[0] + "==." + parts[1] + "." + parts[2]) == token_problem::malformed);
  CHECK(refusal(v, parts[0] + "." + parts[1] + "." + parts[2] + "=") == token_problem::malformed);
  // Standard base64's '+' and '/' are not base64url, nor are spaces or other characters.
  auto header_std = parts[0];
  header_std[1] = '+';
  CHECK(refusal(v, header_std + "." + parts[1] + "." + parts[2]) == token_problem::malformed);
  CHECK(refusal(v, parts[0] + "." + parts[1] + "." + parts[2].substr(0, 10) + "/" + parts[2].substr(11))
        == token_problem::malformed);
  CHECK(refusal(v, " " + good) == token_problem::malformed);
  CHECK(refusal(v, parts[0] + "." + parts[1] + "\n." + parts[2]) == token_problem::malformed);
  // A length no encoding produces (4n + 1 characters).
  CHECK(refusal(v, "A." + parts[1] + "." + parts[2]) == token_problem::malformed);
}

TEST_CASE("a base64url part whose unused trailing bits are set is refused as malformed") {
  jwt_verifier v{hs256_settings()};
  auto parts = split(sign_token(alice_claims(), jwt_algorithm::hs256, secret));
  // 32 bytes of HMAC are 43 characters; the last carries 2 bits that must be zero.
  REQUIRE(parts[2].size() == 43);
  auto last = parts[2].back();
  auto sloppy = parts[2];
  sloppy.back() = last == 'A' ? 'B' : static_cast<char>(last + 1);  // sets a low bit
  CHECK(refusal(v, parts[0] + "." + parts[1] + "." + sloppy) == token_problem::malformed);
}

TEST_CASE("a token over 8 KiB is refused as malformed before anything else") {
  jwt_verifier v{hs256_settings()};
  auto claims = alice_claims();
  claims.rooms.assign(400, "room-with-a-fairly-long-name");
  auto token = sign_token(claims, jwt_algorithm::hs256, secret);
  REQUIRE(token.size() > 8192);
  CHECK(refusal(v, token) == token_problem::malformed);
}

TEST_CASE("a header that is not a JSON object with a string alg is refused as malformed") {
  jwt_verifier v{hs256_settings()};
  auto payload = b64url(R"({"sub":"alice","exp":1800000600})");
  for (auto header : {"not json", "[]", "\"HS256\"", "{}", R"({"alg":256})", R"({"alg":null})",
                      R"({"alg":"HS256","typ":1})", R"({"alg":"HS256")", R"({"alg":"HS256","x":[[[[[1]]]]]})"}) {
    CAPTURE(header);
    CHECK(refusal(v, b64url(header) + "." + payload + ".AAAA") == token_problem::malformed);
  }
}

TEST_CASE("signed claims of the wrong JSON type are refused as malformed") {
  jwt_verifier v{hs256_settings()};
  for (auto payload : {R"(not json)", R"([])", R"("alice")", R"({"sub":"alice","exp":"1800000600"})",
                       R"({"sub":"alice","exp":1800000600.5})", R"({"sub":7,"exp":1800000600})",
                       R"({"sub":"alice","exp":1800000600,"name":["A"]})",
                       R"({"sub":"alice","exp":1800000600,"nbf":true})",
                       R"({"sub":"alice","exp":1800000600,"iss":{}})",
                       R"({"sub":"alice","exp":1800000600,"aud":5})",
                       R"({"sub":"alice","exp":1800000600,"aud":["parley",5]})",
                       R"({"sub":"alice","exp":1800000600,"roles":7})",
                       R"({"sub":"alice","exp":1800000600,"roles":["admin",null]})",
                       R"({"sub":"alice","exp":1800000600,"rooms":"team-a"})",
                       R"({"sub":"alice","exp":1800000600,"rooms":[["team-a"]]})"}) {
    CAPTURE(payload);
    CHECK(refusal(v, hs256_payload(payload)) == token_problem::malformed);
  }
}

// -- keys at load time -------------------------------------------------------------------------------

TEST_CASE("a key of the wrong type for the configured algorithm is refused at load") {
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::es256, rsa_key().public_pem)}, auth_config_error);
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::es256, ed25519_key().public_pem)}, auth_config_error);
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::es256, ec384_key().public_pem)}, auth_config_error);
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::rs256, ec_key().public_pem)}, auth_config_error);
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::eddsa, ec_key().public_pem)}, auth_config_error);
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::eddsa, rsa_key().public_pem)}, auth_config_error);
  // Signing checks the same way.
  CHECK_THROWS_AS(sign_token(alice_claims(), jwt_algorithm::es256, rsa_key().private_pem), auth_config_error);
  CHECK_THROWS_AS(sign_token(alice_claims(), jwt_algorithm::eddsa, ec_key().private_pem), auth_config_error);
}

TEST_CASE("an RSA key shorter than 2048 bits is refused at load") {
  auto small = make_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::rs256, small.public_pem)}, auth_config_error);
}

TEST_CASE("a missing, unreadable or private PEM key is refused at load") {
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::rs256, "")}, auth_config_error);
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::rs256, "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")},
                  auth_config_error);
  // The server is given only public keys; a private key PEM is not one.
  CHECK_THROWS_AS(jwt_verifier{pem_settings(jwt_algorithm::eddsa, ed25519_key().private_pem)}, auth_config_error);
  CHECK_THROWS_AS(sign_token(alice_claims(), jwt_algorithm::rs256, rsa_key().public_pem), auth_config_error);
}

TEST_CASE("an HS256 secret shorter than 32 bytes is refused at load and when signing") {
  auto settings = hs256_settings();
  settings.secret = std::string(31, 's');
  CHECK_THROWS_AS(jwt_verifier{settings}, auth_config_error);
  settings.secret = "";
  CHECK_THROWS_AS(jwt_verifier{settings}, auth_config_error);
  settings.secret = std::string(32, 's');
  CHECK_NOTHROW(jwt_verifier{settings});
  CHECK_THROWS_AS(sign_token(alice_claims(), jwt_algorithm::hs256, "short"), auth_config_error);
}

TEST_CASE("algorithm names are the exact JWS names") {
  for (auto alg : {jwt_algorithm::hs256, jwt_algorithm::rs256, jwt_algorithm::es256, jwt_algorithm::eddsa})
    CHECK(algorithm_from_string(to_string(alg)) == alg);
  CHECK(std::string{to_string(jwt_algorithm::eddsa)} == "EdDSA");
  CHECK_FALSE(algorithm_from_string("hs256"));
  CHECK_FALSE(algorithm_from_string("none"));
  CHECK_FALSE(algorithm_from_string(""));
}

// -- the codec's token JSON ----------------------------------------------------------------------------

TEST_CASE("decode_token_claims reads every claim of the right type") {
  auto claims = parley::protocol::decode_token_claims(
    R"({"sub":"alice","name":"Alice","iss":"me","aud":"parley","exp":20,"nbf":10,"iat":5,
        "roles":"admin","rooms":["a","b"],"extra":{"nested":[1,2]}})",
    "roles", "rooms");
  REQUIRE(claims);
  CHECK(claims->sub == "alice");
  CHECK(claims->name == "Alice");
  CHECK(claims->iss == "me");
  CHECK(claims->aud == std::vector<std::string>{"parley"});
  CHECK(claims->exp == 20);
  CHECK(claims->nbf == 10);
  CHECK(claims->iat == 5);
  CHECK(claims->roles == std::vector<std::string>{"admin"});
  CHECK(claims->rooms == std::vector<std::string>{"a", "b"});
}

TEST_CASE("decode_token_claims leaves absent claims empty and refuses wrong types without throwing") {
  auto empty = parley::protocol::decode_token_claims("{}", "roles", "rooms");
  REQUIRE(empty);
  CHECK(empty->sub.empty());
  CHECK_FALSE(empty->exp);
  CHECK(empty->aud.empty());
  using parley::protocol::decode_token_claims;
  CHECK_FALSE(decode_token_claims(R"({"exp":1.5})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"exp":"1"})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"exp":18446744073709551615})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"iat":null})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"sub":false})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"aud":{"a":1}})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"rooms":"a"})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims(R"({"grp":["a",1]})", "roles", "grp"));
  CHECK_FALSE(decode_token_claims(R"({"x":[[[[[[[[1]]]]]]]]})", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims("", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims("{\"sub\":\"a\"} trailing", "roles", "rooms"));
  CHECK_FALSE(decode_token_claims("null", "roles", "rooms"));
}

TEST_CASE("token header and claims survive encode and decode") {
  auto header_json = parley::protocol::encode_token_header({"ES256", "JWT"});
  CHECK(header_json == R"({"alg":"ES256","typ":"JWT"})");
  auto header = parley::protocol::decode_token_header(header_json);
  REQUIRE(header);
  CHECK(header->alg == "ES256");
  CHECK(header->typ == "JWT");

  token_claims claims = alice_claims();
  claims.iss = "issuer";
  claims.aud = {"one", "two"};
  claims.nbf = now - 5;
  auto json = parley::protocol::encode_token_claims(claims, "r", "g");
  CHECK(json.find("\"r\":[\"moderator\",\"member\"]") != std::string::npos);
  auto back = parley::protocol::decode_token_claims(json, "r", "g");
  REQUIRE(back);
  CHECK(back->sub == claims.sub);
  CHECK(back->name == claims.name);
  CHECK(back->iss == claims.iss);
  CHECK(back->aud == claims.aud);
  CHECK(back->exp == claims.exp);
  CHECK(back->nbf == claims.nbf);
  CHECK(back->iat == claims.iat);
  CHECK(back->roles == claims.roles);
  CHECK(back->rooms == claims.rooms);
  // Unset claims are left out rather than written as null or "".
  CHECK(parley::protocol::encode_token_claims(token_claims{}, "roles", "rooms") == "{}");
}

// -- parley token ----------------------------------------------------------------------------------

namespace {

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("parley_jwt_test_" + std::to_string(::getpid()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto file = path / name;
    std::ofstream{file, std::ios::binary} << text;
    return file.string();
  }
};

token_options parse_or_fail(const std::vector<std::string>& args) {
  std::string error;
  auto options = parse_token_options(args, error);
  REQUIRE_MESSAGE(options, error);
  return *options;
}

std::string parse_error(const std::vector<std::string>& args) {
  std::string error;
  CHECK_FALSE(parse_token_options(args, error));
  return error;
}

} // namespace

TEST_CASE("parley token options: roles and rooms repeat or take comma lists, --opt=value works") {
  auto options = parse_or_fail({"--sub", "alice", "--name=Alice L", "--role", "moderator,readonly",
                                "--role", "admin", "--room", "team-a", "--room=team-b,team-c",
                                "--ttl", "15m", "--config", "x.ini", "--secret", "s"});
  CHECK(options.sub == "alice");
  CHECK(options.name == "Alice L");
  CHECK(options.roles == std::vector<std::string>{"moderator", "readonly", "admin"});
  CHECK(options.rooms == std::vector<std::string>{"team-a", "team-b", "team-c"});
  CHECK(options.ttl == std::chrono::minutes{15});
  CHECK(options.config_path == "x.ini");
  CHECK(options.config_given);
  CHECK(options.secret == "s");
  auto defaults = parse_or_fail({"--sub", "bob"});
  CHECK(defaults.ttl == std::chrono::hours{1});
  CHECK(defaults.config_path == "config.ini");
  CHECK_FALSE(defaults.config_given);
}

TEST_CASE("parley token options refuse a missing or invalid sub, unknown roles and options, bad ttl") {
  CHECK(parse_error({}) == "--sub is required");
  CHECK(parse_error({"--sub", "alice smith"}).find("--sub") != std::string::npos);
  CHECK(parse_error({"--sub", "alice", "--role", "owner"}).find("owner") != std::string::npos);
  CHECK(parse_error({"--sub", "alice", "--room", "bad room"}).find("room") != std::string::npos);
  CHECK(parse_error({"--sub", "alice", "--frobnicate"}).find("--frobnicate") != std::string::npos);
  CHECK(parse_error({"--sub"}) == "--sub needs a value");
  CHECK(parse_error({"--sub", "alice", "--ttl", "soon"}).find("--ttl") != std::string::npos);
}

TEST_CASE("parley token lifetimes take s, m, h and d suffixes and must be positive") {
  CHECK(parse_ttl("90") == std::chrono::seconds{90});
  CHECK(parse_ttl("90s") == std::chrono::seconds{90});
  CHECK(parse_ttl("15m") == std::chrono::seconds{900});
  CHECK(parse_ttl("2h") == std::chrono::seconds{7200});
  CHECK(parse_ttl("7d") == std::chrono::seconds{7 * 86400});
  CHECK_FALSE(parse_ttl(""));
  CHECK_FALSE(parse_ttl("h"));
  CHECK_FALSE(parse_ttl("0s"));
  CHECK_FALSE(parse_ttl("-5m"));
  CHECK_FALSE(parse_ttl("1w"));
  CHECK_FALSE(parse_ttl("1.5h"));
  CHECK_FALSE(parse_ttl("99999999999999999999d"));
}

TEST_CASE("a token from parley token's options and config verifies with the same configuration") {
  temp_dir dir;
  auto config = dir.write("config.ini", "[auth]\nmode=\"jwt\"\nalgorithm=\"HS256\"\nsecret=\"" + secret
                                          + "\"\nissuer=\"https://id.example.com\"\naudience=\"parley\"\n"
                                          + "roles_claim=\"perms\"\n");
  auto options = parse_or_fail({"--sub", "alice", "--name", "Alice", "--role", "moderator", "--room",
                                "team-a", "--ttl", "2h", "--config", config});
  std::string error;
  auto signing = load_token_signing(options, error);
  REQUIRE_MESSAGE(signing, error);
  CHECK(signing->algorithm == jwt_algorithm::hs256);
  CHECK(signing->issuer == "https://id.example.com");
  CHECK(signing->roles_claim == "perms");
  auto token = make_token(options, *signing, now);

  verifier_settings settings = hs256_settings();
  settings.issuer = "https://id.example.com";
  settings.audience = "parley";
  settings.roles_claim = "perms";
  jwt_verifier v{settings};
  auto result = v.verify(token, now);
  REQUIRE_MESSAGE(result, to_string(result.problem));
  CHECK(result.who->user == "alice");
  CHECK(result.who->display_name == "Alice");
  CHECK(result.who->roles == static_cast<role_set>(role::moderator));
  CHECK(result.who->rooms == std::vector<std::string>{"team-a"});
  CHECK(result.who->expires_at == now + 7200);
  CHECK(refusal(v, make_token(options, *signing, now - 7200 - 31)) == token_problem::expired);
}

TEST_CASE("parley token reads the secret from secret_file without its trailing newline, and --secret wins") {
  temp_dir dir;
  auto secret_path = dir.write("secret", secret + "\n");
  auto config = dir.write("config.ini", "[auth]\nsecret_file=\"" + secret_path + "\"\n");
  std::string error;
  auto signing = load_token_signing(parse_or_fail({"--sub", "alice", "--config", config}), error);
  REQUIRE_MESSAGE(signing, error);
  CHECK(signing->key == secret);
  auto overridden = load_token_signing(
    parse_or_fail({"--sub", "alice", "--config", config, "--secret", "another-secret-of-enough-length-1234"}),
    error);
  REQUIRE(overridden);
  CHECK(overridden->key == "another-secret-of-enough-length-1234");
}

TEST_CASE("parley token without --config uses the defaults when config.ini is missing") {
  temp_dir dir;
  auto options = parse_or_fail({"--sub", "dave", "--secret", secret});
  options.config_path = (dir.path / "config.ini").string();  // the default name, not there
  std::string error;
  auto signing = load_token_signing(options, error);
  REQUIRE_MESSAGE(signing, error);
  CHECK(signing->algorithm == jwt_algorithm::hs256);
  CHECK(signing->issuer.empty());
  jwt_verifier v{hs256_settings()};
  CHECK(v.verify(make_token(options, *signing, now), now));
}

TEST_CASE("parley token says what is missing: a config file, a secret, or a private key") {
  temp_dir dir;
  std::string error;
  CHECK_FALSE(load_token_signing(parse_or_fail({"--sub", "a", "--config", (dir.path / "none.ini").string()}), error));
  CHECK(error.find("none.ini") != std::string::npos);

  auto no_secret = dir.write("empty.ini", "[auth]\nmode=\"jwt\"\n");
  CHECK_FALSE(load_token_signing(parse_or_fail({"--sub", "a", "--config", no_secret}), error));
  CHECK(error.find("secret") != std::string::npos);

  auto both = dir.write("both.ini", "[auth]\nsecret=\"" + secret + "\"\nsecret_file=\"/x\"\n");
  CHECK_FALSE(load_token_signing(parse_or_fail({"--sub", "a", "--config", both}), error));
  CHECK(error.find("both") != std::string::npos);

  auto es256 = dir.write("es.ini", "[auth]\nalgorithm=\"ES256\"\n");
  CHECK_FALSE(load_token_signing(parse_or_fail({"--sub", "a", "--config", es256}), error));
  CHECK(error.find("--key") != std::string::npos);

  auto bad_alg = dir.write("none.ini.x", "[auth]\nalgorithm=\"none\"\n");
  CHECK_FALSE(load_token_signing(parse_or_fail({"--sub", "a", "--config", bad_alg}), error));
  CHECK(error.find("none") != std::string::npos);
}

TEST_CASE("parley token signs ES256 with --key and the token verifies with the public key") {
  temp_dir dir;
  auto config = dir.write("config.ini", "[auth]\nalgorithm=\"ES256\"\n");
  auto key = dir.write("private.pem", ec_key().private_pem);
  std::string error;
  auto options = parse_or_fail({"--sub", "carol", "--config", config, "--key", key});
  auto signing = load_token_signing(options, error);
  REQUIRE_MESSAGE(signing, error);
  jwt_verifier v{pem_settings(jwt_algorithm::es256, ec_key().public_pem)};
  auto result = v.verify(make_token(options, *signing, now), now);
  REQUIRE_MESSAGE(result, to_string(result.problem));
  CHECK(result.who->user == "carol");
}

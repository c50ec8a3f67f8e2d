#include "auth/jwt.hpp"

#include "protocol/codec.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <exception>
#include <limits>
#include <utility>
#include <vector>

namespace parley::auth {

namespace {

// -- limits ------------------------------------------------------------------------------------------

/// Larger tokens are refused before any decoding. The codec caps auth and refresh frames' tokens
/// at the same size (codec_limits::max_token_bytes).
constexpr std::size_t max_token_bytes = 8192;

/// HS256 secrets shorter than the hash output make brute-forcing the key easier than forging the MAC
/// (RFC 7518 section 3.2 requires at least 256 bits).
constexpr std::size_t min_secret_bytes = 32;

/// RSA keys below 2048 bits are no longer considered safe (RFC 7518 section 3.3 requires 2048).
constexpr int min_rsa_bits = 2048;

/// The longest display name taken from a token's "name" claim; longer makes the token malformed.
constexpr std::size_t max_display_name_bytes = 64;

/// ES256 signatures in JWS are r and s, each a 32-byte big-endian number (RFC 7518 section 3.4).
constexpr int es256_half = 32;

// -- OpenSSL handles ---------------------------------------------------------------------------------

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct md_ctx_free {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ecdsa_sig_free {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct bn_free {
  void operator()(BIGNUM* p) const { BN_free(p); }
};

using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, md_ctx_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, ecdsa_sig_free>;
using bn_ptr = std::unique_ptr<BIGNUM, bn_free>;

/// OpenSSL reports failures on a per-thread error queue. Verification failures are expected (any
/// client can send a bad signature), and errors left behind would be misread by the next OpenSSL
/// call on the same thread, such as a TLS read in the net layer. So every operation here leaves the
/// queue as empty as it found it.
struct error_queue_guard {
  ~error_queue_guard() { ERR_clear_error(); }
};

// -- base64url (RFC 4648 section 5, without padding, as JWS requires) --------------------------------

constexpr char base64url_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(in[k])); };
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += base64url_alphabet[(v >> 18) & 63];
    out += base64url_alphabet[(v >> 12) & 63];
    out += base64url_alphabet[(v >> 6) & 63];
    out += base64url_alphabet[v & 63];
  }
  if (in.size() - i == 1) {
    uint32_t v = byte(i) << 16;
    out += base64url_alphabet[(v >> 18) & 63];
    out += base64url_alphabet[(v >> 12) & 63];
  } else if (in.size() - i == 2) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += base64url_alphabet[(v >> 18) & 63];
    out += base64url_alphabet[(v >> 12) & 63];
    out += base64url_alphabet[(v >> 6) & 63];
  }
  return out;
}

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

/// Decodes unpadded base64url. Refuses padding, any character outside the alphabet, a length no
/// encoding produces, and leftover bits that are not zero: each byte string then has exactly one
/// accepted spelling, so a token cannot be altered without changing what was signed.
std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t bits = 0;
  int bit_count = 0;
  for (char c : in) {
    int v = base64url_value(c);
    if (v < 0)
      return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>((bits >> bit_count) & 0xff);
    }
  }
  if ((bits & ((1u << bit_count) - 1)) != 0)
    return std::nullopt;
  return out;
}

// -- keys --------------------------------------------------------------------------------------------

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

/// Why `pkey` cannot be used for `alg`, or empty if it can. The key type is fixed by the algorithm,
/// so a key meant for something else (an RSA key configured for ES256) stops start-up instead of
/// failing every sign-in later.
std::string key_mismatch(EVP_PKEY* pkey, jwt_algorithm alg) {
  switch (alg) {
    case jwt_algorithm::hs256:
      return "HS256 uses a secret, not a PEM key";
    case jwt_algorithm::rs256:
      if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA)
        return "RS256 needs an RSA key";
      if (EVP_PKEY_get_bits(pkey) < min_rsa_bits)
        return "RS256 needs an RSA key of at least 2048 bits";
      return {};
    case jwt_algorithm::es256: {
      if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
        return "ES256 needs an EC key on curve P-256";
      char group[64] = {};
      std::size_t group_len = 0;
      if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &group_len) != 1)
        return "ES256 needs an EC key on curve P-256 (the key names no curve)";
      int nid = OBJ_sn2nid(group);
      if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
      if (nid != NID_X9_62_prime256v1)
        return std::string{"ES256 needs an EC key on curve P-256, not "} + group;
      return {};
    }
    case jwt_algorithm::eddsa:
      if (!EVP_PKEY_is_a(pkey, "ED25519"))
        return "EdDSA needs an Ed25519 key";
      return {};
  }
  return "unknown algorithm";
}

enum class pem_kind { public_key, private_key };

/// Reads one PEM key and checks it fits `alg`. Throws auth_config_error.
pkey_ptr load_pem_key(std::string_view pem, pem_kind kind, jwt_algorithm alg) {
  error_queue_guard guard;
  const char* what = kind == pem_kind::public_key ? "public" : "private";
  if (pem.empty())
    throw auth_config_error{std::string{to_string(alg)} + " needs a PEM " + what + " key"};
  if (pem.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw auth_config_error{"the PEM key is too large"};
  bio_ptr bio{BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
  if (!bio)
    throw auth_config_error{"out of memory reading the PEM key"};
  // A null password callback with a null argument means an encrypted key fails rather than
  // prompting on the terminal.
  pkey_ptr pkey{kind == pem_kind::public_key
                  ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)
                  : PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)};
  if (!pkey)
    throw auth_config_error{std::string{"cannot read the PEM "} + what + " key (" + to_string(alg)
                            + " needs a \"" + (kind == pem_kind::public_key ? "PUBLIC KEY" : "PRIVATE KEY")
                            + "\" block)"};
  auto problem = key_mismatch(pkey.get(), alg);
  if (!problem.empty())
    throw auth_config_error{"wrong key type: " + problem};
  return pkey;
}

void check_secret(std::string_view secret) {
  if (secret.size() < min_secret_bytes)
    throw auth_config_error{"the HS256 secret must be at least 32 bytes (it has "
                            + std::to_string(secret.size()) + ")"};
}

// -- signatures --------------------------------------------------------------------------------------

/// HMAC-SHA256 of `data` under `secret`; empty on failure.
std::string hmac_sha256(std::string_view secret, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  std::size_t mac_len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                 bytes(data), data.size(), mac.data(), mac.size(), &mac_len))
    return {};
  return std::string{reinterpret_cast<const char*>(mac.data()), mac_len};
}

/// The digest EVP_DigestSign/Verify use for `alg`: SHA-256, or none for Ed25519, which hashes
/// internally and must be given the whole message in one call.
const EVP_MD* digest_for(jwt_algorithm alg) {
  return alg == jwt_algorithm::eddsa ? nullptr : EVP_sha256();
}

/// A raw JWS ES256 signature (r || s) as the DER ECDSA-Sig-Value OpenSSL verifies; empty if it is
/// not exactly 64 bytes.
std::string es256_raw_to_der(std::string_view raw) {
  if (raw.size() != 2 * static_cast<std::size_t>(es256_half))
    return {};
  bn_ptr r{BN_bin2bn(bytes(raw), es256_half, nullptr)};
  bn_ptr s{BN_bin2bn(bytes(raw) + es256_half, es256_half, nullptr)};
  ecdsa_sig_ptr sig{ECDSA_SIG_new()};
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1)
    return {};
  r.release();  // owned by sig now
  s.release();
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0)
    return {};
  std::string out{reinterpret_cast<const char*>(der), static_cast<std::size_t>(der_len)};
  OPENSSL_free(der);
  return out;
}

/// A DER ECDSA signature from OpenSSL as the fixed-size r || s JWS wants (each left-padded).
std::string es256_der_to_raw(std::string_view der) {
  const unsigned char* p = bytes(der);
  ecdsa_sig_ptr sig{d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()))};
  if (!sig)
    throw auth_config_error{"ES256 signing produced an unreadable signature"};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(2 * static_cast<std::size_t>(es256_half), '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, es256_half) != es256_half
      || BN_bn2binpad(s, out + es256_half, es256_half) != es256_half)
    throw auth_config_error{"ES256 signing produced an oversized signature"};
  return raw;
}

/// Checks an RS256, ES256 or EdDSA signature (already in OpenSSL's form) over `data`.
bool verify_with_key(EVP_PKEY* pkey, jwt_algorithm alg, std::string_view data,
                     std::string_view signature) {
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, digest_for(alg), nullptr, pkey) != 1)
    return false;
  // 1 means valid; 0 a wrong signature and below 0 an unusable one: both are refusals.
  return EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(data), data.size())
         == 1;
}

/// Signs `data` with an RS256, ES256 or EdDSA private key; the signature in OpenSSL's form.
std::string sign_with_key(EVP_PKEY* pkey, jwt_algorithm alg, std::string_view data) {
  md_ctx_ptr ctx{EVP_MD_CTX_new()};
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digest_for(alg), nullptr, pkey) != 1)
    throw auth_config_error{std::string{"cannot sign with this key for "} + to_string(alg)};
  std::size_t len = 0;
  // The first call asks for the largest signature size, the second signs.
  if (EVP_DigestSign(ctx.get(), nullptr, &len, bytes(data), data.size()) != 1)
    throw auth_config_error{std::string{"cannot sign with this key for "} + to_string(alg)};
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes(data),
                     data.size())
      != 1)
    throw auth_config_error{std::string{"signing failed for "} + to_string(alg)};
  sig.resize(len);
  return sig;
}

// -- time --------------------------------------------------------------------------------------------

/// a + b, held at the int64_t limits instead of overflowing: exp and nbf come from the token and
/// may be anything an integer can be.
int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return sum;
}

verification refuse(token_problem problem) {
  verification result;
  result.problem = problem;
  return result;
}

} // namespace

// -- names -------------------------------------------------------------------------------------------

const char* to_string(jwt_algorithm alg) {
  switch (alg) {
    case jwt_algorithm::hs256: return "HS256";
    case jwt_algorithm::rs256: return "RS256";
    case jwt_algorithm::es256: return "ES256";
    case jwt_algorithm::eddsa: return "EdDSA";
  }
  return "HS256";
}

std::optional<jwt_algorithm> algorithm_from_string(std::string_view name) {
  // Exact, case-sensitive: these are the registered JWS names, and the header is compared the same
  // way.
  for (auto alg : {jwt_algorithm::hs256, jwt_algorithm::rs256, jwt_algorithm::es256,
                   jwt_algorithm::eddsa})
    if (name == to_string(alg))
      return alg;
  return std::nullopt;
}

const char* to_string(token_problem problem) {
  switch (problem) {
    case token_problem::malformed: return "token malformed";
    case token_problem::wrong_algorithm: return "token algorithm not accepted";
    case token_problem::bad_signature: return "token signature invalid";
    case token_problem::expired: return "token expired";
    case token_problem::missing_expiry: return "token has no expiry";
    case token_problem::not_yet_valid: return "token not yet valid";
    case token_problem::wrong_issuer: return "token issuer not accepted";
    case token_problem::wrong_audience: return "token audience not accepted";
    case token_problem::bad_subject: return "token subject is not a valid user name";
  }
  return "token malformed";
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// -- verifier ----------------------------------------------------------------------------------------

/// The loaded key: the secret for HS256, an OpenSSL public key otherwise.
struct jwt_verifier::key {
  std::string secret;
  pkey_ptr pkey;
};

jwt_verifier::jwt_verifier(verifier_settings settings)
    : settings_(std::move(settings)), key_(std::make_unique<key>()) {
  if (settings_.leeway < std::chrono::seconds{0})
    throw auth_config_error{"the leeway must not be negative"};
  if (settings_.algorithm == jwt_algorithm::hs256) {
    check_secret(settings_.secret);
    key_->secret = settings_.secret;
  } else {
    key_->pkey = load_pem_key(settings_.public_key_pem, pem_kind::public_key, settings_.algorithm);
  }
}

jwt_verifier::~jwt_verifier() = default;

verification jwt_verifier::verify(std::string_view token, int64_t now) const {
  error_queue_guard guard;
  try {
    if (token.size() > max_token_bytes)
      return refuse(token_problem::malformed);
    auto first_dot = token.find('.');
    if (first_dot == std::string_view::npos)
      return refuse(token_problem::malformed);
    auto second_dot = token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos)
      return refuse(token_problem::malformed);
    auto header_part = token.substr(0, first_dot);
    auto payload_part = token.substr(first_dot + 1, second_dot - first_dot - 1);
    auto signature_part = token.substr(second_dot + 1);

    // The algorithm is settled before any key is touched: a token never chooses how it is checked.
    auto header_json = base64url_decode(header_part);
    if (!header_json)
      return refuse(token_problem::malformed);
    auto header = protocol::decode_token_header(*header_json);
    if (!header)
      return refuse(token_problem::malformed);
    if (header->alg != to_string(settings_.algorithm))
      return refuse(token_problem::wrong_algorithm);

    auto payload_json = base64url_decode(payload_part);
    auto signature = base64url_decode(signature_part);
    if (!payload_json || !signature)
      return refuse(token_problem::malformed);

    // JWS signs the encoded parts exactly as they travel, dot included.
    auto signing_input = token.substr(0, second_dot);
    bool valid = false;
    switch (settings_.algorithm) {
      case jwt_algorithm::hs256: {
        auto expected = hmac_sha256(key_->secret, signing_input);
        // Constant time, so the time taken leaks nothing about how much of a forged MAC is right.
        valid = !expected.empty() && signature->size() == expected.size()
                && CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) == 0;
        break;
      }
      case jwt_algorithm::es256: {
        auto der = es256_raw_to_der(*signature);
        valid = !der.empty() && verify_with_key(key_->pkey.get(), settings_.algorithm, signing_input, der);
        break;
      }
      case jwt_algorithm::rs256:
      case jwt_algorithm::eddsa:
        valid = verify_with_key(key_->pkey.get(), settings_.algorithm, signing_input, *signature);
        break;
    }
    if (!valid)
      return refuse(token_problem::bad_signature);

    // Only a signed payload is parsed as JSON.
    auto claims = protocol::decode_token_claims(*payload_json, settings_.roles_claim,
                                                settings_.rooms_claim);
    if (!claims || claims->name.size() > max_display_name_bytes)
      return refuse(token_problem::malformed);

    const int64_t leeway = settings_.leeway.count();
    if (!claims->exp)
      return refuse(token_problem::missing_expiry);
    if (now > saturating_add(*claims->exp, leeway))
      return refuse(token_problem::expired);
    if (claims->nbf && *claims->nbf > saturating_add(now, leeway))
      return refuse(token_problem::not_yet_valid);
    if (!settings_.issuer.empty() && claims->iss != settings_.issuer)
      return refuse(token_problem::wrong_issuer);
    if (!settings_.audience.empty()
        && std::find(claims->aud.begin(), claims->aud.end(), settings_.audience) == claims->aud.end())
      return refuse(token_problem::wrong_audience);
    if (!protocol::is_valid_user_name(claims->sub))
      return refuse(token_problem::bad_subject);

    identity who;
    who.user = std::move(claims->sub);
    who.display_name = std::move(claims->name);
    role_set roles = 0;
    for (const auto& name : claims->roles)
      if (auto r = role_from_string(name))
        roles |= static_cast<role_set>(*r);
    // Unknown role names are ignored (an issuer may use roles meant for other services); a token
    // naming none Parley knows gets the default.
    who.roles = roles != 0 ? roles : static_cast<role_set>(role::member);
    who.rooms = std::move(claims->rooms);
    who.expires_at = claims->exp;
    verification result;
    result.who = std::move(who);
    return result;
  } catch (const std::exception&) {
    // Only allocation failure can get here; callers are network handlers that must not throw.
    return refuse(token_problem::malformed);
  }
}

// -- signing -----------------------------------------------------------------------------------------

std::string sign_token(const token_claims& claims, jwt_algorithm alg, std::string_view key,
                       const std::string& roles_claim, const std::string& rooms_claim) {
  error_queue_guard guard;
  token_header header;
  header.alg = to_string(alg);
  header.typ = "JWT";
  std::string token = base64url_encode(protocol::encode_token_header(header));
  token += '.';
  token += base64url_encode(protocol::encode_token_claims(claims, roles_claim, rooms_claim));

  std::string signature;
  if (alg == jwt_algorithm::hs256) {
    check_secret(key);
    signature = hmac_sha256(key, token);
    if (signature.empty())
      throw auth_config_error{"HMAC-SHA256 failed"};
  } else {
    auto pkey = load_pem_key(key, pem_kind::private_key, alg);
    signature = sign_with_key(pkey.get(), alg, token);
    if (alg == jwt_algorithm::es256)
      signature = es256_der_to_raw(signature);
  }
  token += '.';
  token += base64url_encode(signature);
  return token;
}

} // namespace parley::auth

#pragma once
// JSON Web Key Sets (RFC 7517/7518) as RequestAuthentication's `jwks`/`jwksUri` deliver them,
// turned into OpenSSL 3 public keys once, when the set is loaded.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jwt/jwt.h"
#include "common/tls/ossl.h"

namespace zm::jwt {

enum class EcCurve { kP256, kP384, kP521 };

struct EcCurveInfo {
  EcCurve curve;
  const char* jwk_name;     // "P-256"
  const char* group;        // OpenSSL's group name
  size_t coordinate_bytes;  // of x and y, and of R and S in a JOSE signature
  JwtAlg alg;               // the one algorithm signing on this curve (ES256 <-> P-256, ...)
};
const EcCurveInfo& CurveInfo(EcCurve curve);

// One usable verification key.
struct Jwk {
  Jwk() = default;
  Jwk(Jwk&&) = default;
  Jwk& operator=(Jwk&&) = default;
  ~Jwk();  // wipes `secret`

  size_t index = 0;  // position in the set's "keys" array (for messages)
  KeyType kty = KeyType::kRsa;
  std::string kid;               // "" when absent: matches any token kid
  std::optional<JwtAlg> alg;     // nullopt when absent: any algorithm of the key's type
  std::string use;               // "" or "sig"
  std::optional<EcCurve> curve;  // EC keys
  tls::EvpPkeyPtr key;           // RSA, EC and OKP (Ed25519) public keys
  std::string secret;            // oct (HMAC) keys
  bool had_private_material = false;
};

// Sets larger than this are refused.
inline constexpr size_t kMaxJwksBytes = 1 << 20;

// Keys shorter than these are refused.
inline constexpr int kMinRsaBits = 2048;
inline constexpr size_t kMinHmacBytes = 32;

struct Jwks {
  std::vector<Jwk> keys;
  // One line per key that was skipped, naming its index, kid and field:
  // `keys[1] (kid "a"): RSA [n]: 1024-bit modulus, at least 2048 bits required`.
  std::vector<std::string> skipped;
  // Keys accepted with a remark (private key material present: only the public part is used).
  std::vector<std::string> warnings;

  // Parses a JWKS document: a JSON object whose "keys" is an array of JWKs. Each key must be
  //  - RSA: n, e (n of kMinRsaBits..16384 bits, odd; e odd, 3 <= e < 2^64);
  //  - EC: crv P-256/P-384/P-521, x and y of exactly the coordinate size, on the curve;
  //  - OKP: crv Ed25519, x of 32 bytes;
  //  - oct: k of at least kMinHmacBytes (and at least the digest size of its alg);
  // with optional kid (string), alg (a signature algorithm of the key's type and curve) and
  // use ("sig"). Keys that fail are skipped and listed in `skipped`; a set with no usable key
  // is InvalidArgument ("Jwks doesn't have any valid public key: <skipped...>").
  static absl::StatusOr<Jwks> Parse(std::string_view json);
};

}  // namespace zm::jwt

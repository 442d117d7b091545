// Fuzz target: arbitrary bytes as a token, against a fixed JWKS.
#include "tests/common/jwt/fuzz/jwt_fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "common/base/clock.h"
#include "common/jwt/authenticator.h"
#include "common/jwt/base64url.h"
#include "common/jwt/claims.h"
#include "common/jwt/json.h"
#include "common/jwt/verifier.h"

namespace zm::jwt::fuzz {
namespace {

// Public keys only: RSA-2048, EC P-256/P-384/P-521, Ed25519, and one HMAC secret, written by
// jwt_fuzz_make_corpus together with the seeds signed by their private halves.
constexpr char kJwksJson[] =
#include "tests/common/jwt/fuzz/fuzz_jwks.inc"
    ;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "jwt fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

struct Fixture {
  FakeClock clock{std::chrono::system_clock::time_point(std::chrono::seconds(kFuzzNow))};
  std::shared_ptr<StaticJwksSource> source = StaticJwksSource::FromJson(kJwksJson);
  std::shared_ptr<const Jwks> jwks;
  std::unique_ptr<Authenticator> authenticator;

  Fixture() {
    auto current = source->Current();
    Check(current.ok(), "fixed JWKS parses");
    jwks = *current;
    JwtRule rule;
    rule.audiences = {kFuzzAudience};
    rule.jwks = source;
    rule.output_payload_to_header = "x-payload";
    rule.output_claim_to_headers = {{"x-sub", "sub"}, {"x-nested", "a.b"}};
    auto a = Authenticator::Create({rule}, clock);
    Check(a.ok(), "authenticator");
    authenticator = std::make_unique<Authenticator>(*std::move(a));
  }
};

const Fixture& F() {
  static const Fixture* f = new Fixture();
  return *f;
}

bool OnlyTokenChars(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return !s.empty();
}

}  // namespace

absl::Status VerifyForFuzz(std::string_view token) {
  const Fixture& f = F();
  absl::StatusOr<VerifiedJwt> v = VerifyToken(token, *f.jwks, {"", {kFuzzAudience}}, f.clock);
  if (!v.ok()) {
    std::optional<JwtFailure> failure = JwtFailureOf(v.status());
    Check(failure.has_value(), "every failure carries a JwtFailure");
    Check(std::string(v.status().message()) == JwtFailureText(*failure), "failure text");
    Check(JwtHttpStatus(v.status()) == (*failure == JwtFailure::kAudienceNotAllowed ? 403 : 401),
          "401/403");
  } else {
    auto payload = Base64UrlDecode(v->payload_segment);
    Check(payload.ok(), "payload segment decodes");
    auto claims = ParseJson(*payload);
    Check(claims.ok() && *claims == v->claims, "payload segment is the claims");
    Check(v->principal.empty() == (v->issuer.empty() || v->subject.empty()), "principal");
    (void)ClaimValues(v->claims, {"scope"});
    (void)ClaimHeaderValue(v->claims, "a.b");
  }

  // The same bytes through the Authenticator, in a header and in the query string.
  std::string as_text(token);
  RequestView header{"GET", "/", {{"Authorization", "Bearer " + as_text}}};
  AuthnResult by_header = f.authenticator->Authenticate(header);
  RequestView query{"GET", "/p?access_token=" + as_text, {}};
  AuthnResult by_query = f.authenticator->Authenticate(query);
  if (OnlyTokenChars(token)) {
    // Extraction takes such a token whole, so both must agree with the verifier.
    for (const AuthnResult* r : {&by_header, &by_query}) {
      Check(r->ok == v.ok(), "authenticator agrees with verifier");
      if (!v.ok()) Check(r->failure == JwtFailureOf(v.status()), "same failure");
      if (v.ok()) Check(r->identity.has_value(), "identity on pass");
    }
    if (v.ok()) Check(!header.HasHeader("authorization"), "token header removed");
  }
  return v.status();
}

}  // namespace zm::jwt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)zm::jwt::fuzz::VerifyForFuzz(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

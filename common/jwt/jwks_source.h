#pragma once
// The seam between verification and key distribution (CONVENTIONS 3): a rule asks its source
// for the current key set. The waypoint plugs in a fetcher for `jwksUri` (HTTP, cache, TTL on
// an injected Clock); inline `jwks` and tests use StaticJwksSource.

#include <memory>
#include <mutex>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/jwt/jwks.h"

namespace zm::jwt {

class JwksSource {
 public:
  virtual ~JwksSource() = default;
  // The key set to verify with now, or why there is none (fetch failed or timed out, document
  // unparsable, no usable key). Called on workers for every token: thread-safe, never blocks.
  virtual absl::StatusOr<std::shared_ptr<const Jwks>> Current() const = 0;
};

// A key set held in memory. Thread-safe; Set() replaces it (key rotation, a fetch outcome).
class StaticJwksSource final : public JwksSource {
 public:
  explicit StaticJwksSource(absl::StatusOr<std::shared_ptr<const Jwks>> jwks);
  // An inline `jwks` document; when it does not parse, its error is what Current() returns.
  static std::shared_ptr<StaticJwksSource> FromJson(std::string_view json);

  absl::StatusOr<std::shared_ptr<const Jwks>> Current() const override;
  void Set(absl::StatusOr<std::shared_ptr<const Jwks>> jwks);
  void SetJson(std::string_view json);

 private:
  mutable std::mutex mu_;
  absl::StatusOr<std::shared_ptr<const Jwks>> jwks_;
};

}  // namespace zm::jwt

#include "common/jwt/jwks_source.h"

#include <utility>

namespace zm::jwt {
namespace {

absl::StatusOr<std::shared_ptr<const Jwks>> Load(std::string_view json) {
  auto jwks = Jwks::Parse(json);
  if (!jwks.ok()) return jwks.status();
  return std::make_shared<const Jwks>(*std::move(jwks));
}

}  // namespace

StaticJwksSource::StaticJwksSource(absl::StatusOr<std::shared_ptr<const Jwks>> jwks)
    : jwks_(std::move(jwks)) {}

std::shared_ptr<StaticJwksSource> StaticJwksSource::FromJson(std::string_view json) {
  return std::make_shared<StaticJwksSource>(Load(json));
}

absl::StatusOr<std::shared_ptr<const Jwks>> StaticJwksSource::Current() const {
  std::lock_guard lock(mu_);
  return jwks_;
}

void StaticJwksSource::Set(absl::StatusOr<std::shared_ptr<const Jwks>> jwks) {
  std::lock_guard lock(mu_);
  jwks_ = std::move(jwks);
}

void StaticJwksSource::SetJson(std::string_view json) { Set(Load(json)); }

}  // namespace zm::jwt

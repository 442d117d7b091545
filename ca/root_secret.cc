#include "ca/root_secret.h"

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/kube/json.h"

namespace zm::ca {
namespace {

using nlohmann::json;

spdlog::logger& L() {
  static spdlog::logger& l = Log("ca");
  return l;
}

std::string SecretPath(const NamespacedName& s) {
  return StrCat("/api/v1/namespaces/", s.namespace_name, "/secrets", s.name.empty() ? "" : "/",
                s.name);
}

// data[key] of a Secret, decoded; errors name the Secret and the key.
absl::StatusOr<std::string> DataField(const json& secret, const std::string& what,
                                      const char* key) {
  const json* data = kube::Field(secret, "data");
  if (data == nullptr || !data->is_object()) {
    return absl::FailedPreconditionError(
        StrCat(what, ": no data (expected keys ", kRootCertKey, " and ", kRootKeyKey, ")"));
  }
  const json* value = kube::Field(*data, key);
  if (value == nullptr) return absl::FailedPreconditionError(StrCat(what, ": no data key ", key));
  std::string decoded;
  if (!value->is_string() || !absl::Base64Unescape(value->get<std::string>(), &decoded) ||
      decoded.empty()) {
    return absl::FailedPreconditionError(StrCat(what, ", key ", key, ": not valid base64"));
  }
  return decoded;
}

absl::StatusOr<tls::CertificateAuthority> FromSecret(const json& secret, const std::string& what,
                                                     std::string trust_domain, const Clock& clock) {
  auto cert = DataField(secret, what, kRootCertKey);
  if (!cert.ok()) return cert.status();
  auto key = DataField(secret, what, kRootKeyKey);
  if (!key.ok()) return key.status();
  auto ca = tls::CertificateAuthority::FromPem(*cert, *key, std::move(trust_domain), clock,
                                               StrCat(what, ", key ", kRootCertKey),
                                               StrCat(what, ", key ", kRootKeyKey));
  if (!ca.ok()) return absl::FailedPreconditionError(ca.status().message());
  return ca;
}

}  // namespace

absl::StatusOr<tls::CertificateAuthority> LoadOrCreateRootSecret(kube::KubeApi& api,
                                                                 const NamespacedName& secret,
                                                                 std::string trust_domain,
                                                                 const Clock& clock) {
  const std::string what = StrCat("Secret ", secret.ToString());
  auto existing = api.Get(SecretPath(secret));
  if (existing.ok()) {
    auto ca = FromSecret(*existing, what, std::move(trust_domain), clock);
    if (ca.ok()) L().info("root CA loaded from {}", what);
    return ca;
  }
  if (kube::HttpStatusOf(existing.status()) != 404) {
    return absl::Status(existing.status().code(),
                        StrCat(what, ": cannot read it: ", existing.status().message()));
  }

  auto root = tls::CertificateAuthority::GenerateRoot(trust_domain, clock);
  if (!root.ok()) return root.status();
  const json object = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata",
       {{"name", secret.name},
        {"namespace", secret.namespace_name},
        {"labels", {{"app.kubernetes.io/managed-by", "zmesh-ca"}}}}},
      {"type", "kubernetes.io/tls"},
      {"data",
       {{kRootCertKey, absl::Base64Escape(root->cert_pem)},
        {kRootKeyKey, absl::Base64Escape(root->key_pem)}}},
  };
  auto created = api.Create(SecretPath({secret.namespace_name, ""}), object);
  if (created.ok()) {
    auto ca = tls::CertificateAuthority::FromPem(root->cert_pem, root->key_pem,
                                                 std::move(trust_domain), clock, what, what);
    if (ca.ok())
      L().info("root CA created for trust domain {}, kept in {}", ca->trust_domain(), what);
    return ca;
  }
  if (kube::HttpStatusOf(created.status()) != 409) {
    return absl::Status(created.status().code(),
                        StrCat(what, ": cannot create it: ", created.status().message()));
  }
  // Another replica created it between our read and our create: use its root.
  L().info("{} was created by another zmesh-ca meanwhile: using its root", what);
  auto winner = api.Get(SecretPath(secret));
  if (!winner.ok()) {
    return absl::Status(
        winner.status().code(),
        StrCat(what, ": cannot read it after a create conflict: ", winner.status().message()));
  }
  auto ca = FromSecret(*winner, what, std::move(trust_domain), clock);
  if (ca.ok()) L().info("root CA loaded from {}", what);
  return ca;
}

}  // namespace zm::ca

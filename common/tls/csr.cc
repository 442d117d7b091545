#include "common/tls/csr.h"

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include <optional>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/pem.h"

namespace zm::tls {
namespace {

absl::Status CheckKey(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                         &len) != 1) {
        return OpenSslError("CSR: EC key without a named curve");
      }
      std::string_view g(group, len);
      if (g != "prime256v1" && g != "secp384r1") {
        return absl::InvalidArgumentError(StrCat("CSR: EC curve ", g, " is not allowed"));
      }
      return absl::OkStatus();
    }
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key) < 2048) {
        return absl::InvalidArgumentError(
            StrCat("CSR: RSA key of ", EVP_PKEY_get_bits(key), " bits, at least 2048 required"));
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError("CSR: key type is not EC or RSA");
  }
}

}  // namespace

absl::StatusOr<std::string> BuildCsr(EVP_PKEY* key, const SpiffeId& id) {
  X509ReqPtr req(X509_REQ_new());
  if (req == nullptr) return OpenSslError("X509_REQ_new");
  if (X509_REQ_set_version(req.get(), 0) != 1) return OpenSslError("X509_REQ_set_version");
  if (X509_REQ_set_pubkey(req.get(), key) != 1) return OpenSslError("X509_REQ_set_pubkey");
  ZM_ASSIGN_OR_RETURN(GeneralNamesPtr san, SpiffeSan(id));
  STACK_OF(X509_EXTENSION)* raw_exts = sk_X509_EXTENSION_new_null();
  X509ExtensionStackPtr exts(raw_exts);
  if (exts == nullptr || X509V3_add1_i2d(&raw_exts, NID_subject_alt_name, san.get(), /*crit=*/1,
                                         X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("X509V3_add1_i2d(subjectAltName)");
  }
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return OpenSslError("X509_REQ_add_extensions");
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return OpenSslError("X509_REQ_sign");
  return CsrToPem(req.get());
}

absl::StatusOr<ParsedCsr> ParseCsr(std::string_view pem) {
  ZM_ASSIGN_OR_RETURN(X509ReqPtr req, CsrFromPem(pem, "CSR"));
  EvpPkeyPtr key(X509_REQ_get_pubkey(req.get()));
  if (key == nullptr) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("CSR: no usable public key");
  }
  if (X509_REQ_verify(req.get(), key.get()) != 1) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("CSR: bad signature (not signed by its own key)");
  }
  ZM_RETURN_IF_ERROR(CheckKey(key.get()));

  X509ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  ClearOpenSslErrors();
  std::optional<SpiffeId> identity;
  bool seen_san = false;
  for (int i = 0; exts != nullptr && i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    if (seen_san) return absl::InvalidArgumentError("CSR: more than one subjectAltName extension");
    seen_san = true;
    GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)));
    if (names == nullptr) {
      ClearOpenSslErrors();
      return absl::InvalidArgumentError("CSR: malformed subjectAltName");
    }
    for (int j = 0; j < sk_GENERAL_NAME_num(names.get()); ++j) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), j);
      switch (gn->type) {
        case GEN_URI: {
          if (identity.has_value()) return absl::InvalidArgumentError("CSR: more than one URI SAN");
          const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
          std::string uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          static_cast<size_t>(ASN1_STRING_length(s)));
          if (uri.find('\0') != std::string::npos) {
            return absl::InvalidArgumentError("CSR: URI SAN contains a NUL byte");
          }
          auto id = SpiffeId::Parse(uri);
          if (!id.ok()) return absl::InvalidArgumentError(StrCat("CSR: ", id.status().message()));
          identity = *std::move(id);
          break;
        }
        case GEN_DNS:
          return absl::InvalidArgumentError("CSR: DNS SANs are not allowed, only one URI SAN");
        case GEN_IPADD:
          return absl::InvalidArgumentError("CSR: IP SANs are not allowed, only one URI SAN");
        default:
          return absl::InvalidArgumentError(
              StrCat("CSR: SAN of type ", gn->type, " is not allowed, only one URI SAN"));
      }
    }
  }
  if (!identity.has_value()) return absl::InvalidArgumentError("CSR: no URI SAN (no SPIFFE ID)");
  return ParsedCsr{std::move(key), *std::move(identity)};
}

}  // namespace zm::tls

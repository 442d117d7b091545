#include "ca/serving_cert.h"

#include <openssl/rand.h>

#include <algorithm>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/pem.h"

namespace zm::ca {
namespace {

bool IsDnsName(std::string_view s) {
  if (s.rfind("*.", 0) == 0) s.remove_prefix(2);
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    if (label == 0 && c == '-') return false;
    if (++label > 63) return false;
  }
  return label > 0 && s.back() != '-';
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  tls::X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return tls::OpenSslError(StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<tls::GeneralNamesPtr> DnsSans(const std::vector<std::string>& names) {
  tls::GeneralNamesPtr sans(GENERAL_NAMES_new());
  if (sans == nullptr) return tls::OpenSslError("GENERAL_NAMES_new");
  for (const std::string& name : names) {
    tls::Asn1Ia5StringPtr ia5(ASN1_IA5STRING_new());
    tls::GeneralNamePtr gn(GENERAL_NAME_new());
    if (ia5 == nullptr || gn == nullptr ||
        ASN1_STRING_set(ia5.get(), name.data(), static_cast<int>(name.size())) != 1) {
      return tls::OpenSslError("DNS SAN");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());
    if (sk_GENERAL_NAME_push(sans.get(), gn.get()) == 0) return tls::OpenSslError("DNS SAN");
    gn.release();
  }
  return sans;
}

}  // namespace

absl::StatusOr<ServingCredentials> IssueServingCredentials(
    X509* root, EVP_PKEY* root_key, const std::vector<std::string>& dns_names,
    std::chrono::seconds ttl, const Clock& clock) {
  if (dns_names.empty()) return absl::InvalidArgumentError("serving certificate: no DNS name");
  for (const std::string& n : dns_names) {
    if (!IsDnsName(n)) {
      return absl::InvalidArgumentError(
          StrCat("serving certificate: \"", n, "\" is not a lower-case DNS name"));
    }
  }
  if (ttl <= std::chrono::seconds(0)) {
    return absl::InvalidArgumentError("serving certificate: ttl must be positive");
  }
  if (X509_check_private_key(root, root_key) != 1) {
    tls::ClearOpenSslErrors();
    return absl::FailedPreconditionError("the root key does not match the root certificate");
  }
  ZM_ASSIGN_OR_RETURN(tls::EvpPkeyPtr key, tls::GenerateEcP256Key());

  auto now = clock.Now();
  time_t not_before = std::chrono::system_clock::to_time_t(now - std::chrono::seconds(60));
  time_t not_after = std::chrono::system_clock::to_time_t(now + ttl);
  {
    struct tm tm {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(root), &tm) == 1) {
      not_after = std::min(not_after, timegm(&tm));
    }
  }
  if (not_after <= std::chrono::system_clock::to_time_t(now)) {
    return absl::FailedPreconditionError("the root certificate has expired");
  }

  tls::X509Ptr leaf(X509_new());
  if (leaf == nullptr || X509_set_version(leaf.get(), X509_VERSION_3) != 1) {
    return tls::OpenSslError("X509_new");
  }
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) return tls::OpenSslError("RAND_bytes");
  serial_bytes[0] = static_cast<unsigned char>((serial_bytes[0] & 0x7f) | 0x40);
  tls::BignumPtr bn(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  tls::Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (serial == nullptr || X509_set_serialNumber(leaf.get(), serial.get()) != 1) {
    return tls::OpenSslError("serial number");
  }
  const std::string& cn = dns_names.front();
  X509_NAME* subject = X509_get_subject_name(leaf.get());
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(leaf.get(), X509_get_subject_name(root)) != 1) {
    return tls::OpenSslError("subject/issuer");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(leaf.get()), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(leaf.get()), not_after) == nullptr) {
    return tls::OpenSslError("validity");
  }
  if (X509_set_pubkey(leaf.get(), key.get()) != 1) return tls::OpenSslError("X509_set_pubkey");
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), root, NID_basic_constraints, "critical,CA:FALSE"));
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), root, NID_key_usage, "critical,digitalSignature"));
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), root, NID_ext_key_usage, "serverAuth"));
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), root, NID_authority_key_identifier, "keyid"));
  ZM_ASSIGN_OR_RETURN(tls::GeneralNamesPtr sans, DnsSans(dns_names));
  if (X509_add1_ext_i2d(leaf.get(), NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return tls::OpenSslError("subjectAltName");
  }
  int key_type = EVP_PKEY_get_base_id(root_key);
  const EVP_MD* digest =
      (key_type == EVP_PKEY_ED25519 || key_type == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
  if (X509_sign(leaf.get(), root_key, digest) <= 0) return tls::OpenSslError("X509_sign");

  ZM_ASSIGN_OR_RETURN(std::string leaf_pem, tls::CertToPem(leaf.get()));
  ZM_ASSIGN_OR_RETURN(std::string root_pem, tls::CertToPem(root));
  ZM_ASSIGN_OR_RETURN(std::string key_pem, tls::PrivateKeyToPem(key.get()));
  return ServingCredentials{.key_pem = std::move(key_pem),
                            .chain_pem = leaf_pem + root_pem,
                            .not_after = std::chrono::system_clock::from_time_t(not_after)};
}

}  // namespace zm::ca

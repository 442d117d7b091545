#include "common/tls/ca.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"

namespace zm::tls {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("tls");
  return l;
}

time_t ToTimeT(std::chrono::system_clock::time_point t) {
  return std::chrono::system_clock::to_time_t(t);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 || errno != ENOENT;
}

absl::Status SetRandomSerial(X509* cert) {
  unsigned char buf[16];
  if (RAND_bytes(buf, sizeof(buf)) != 1) return OpenSslError("RAND_bytes");
  buf[0] &= 0x7f;  // positive
  buf[0] |= 0x40;  // and exactly 16 bytes long
  BignumPtr bn(BN_bin2bn(buf, sizeof(buf), nullptr));
  if (bn == nullptr) return OpenSslError("BN_bin2bn");
  Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (serial == nullptr || X509_set_serialNumber(cert, serial.get()) != 1) {
    return OpenSslError("X509_set_serialNumber");
  }
  return absl::OkStatus();
}

absl::Status SetValidity(X509* cert, time_t not_before, time_t not_after) {
  if (ASN1_TIME_set(X509_getm_notBefore(cert), not_before) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), not_after) == nullptr) {
    return OpenSslError("ASN1_TIME_set");
  }
  return absl::OkStatus();
}

// Adds an extension written in OpenSSL's config syntax ("critical,CA:TRUE").
absl::Status AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return OpenSslError(StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

const EVP_MD* DigestFor(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  return (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
}

// A subjectAltName value holding `names` as DNS names, in order.
absl::StatusOr<GeneralNamesPtr> DnsSans(const std::vector<std::string>& names) {
  GeneralNamesPtr sans(sk_GENERAL_NAME_new_null());
  if (sans == nullptr) return OpenSslError("sk_GENERAL_NAME_new_null");
  for (const std::string& name : names) {
    Asn1Ia5StringPtr ia5(ASN1_IA5STRING_new());
    GeneralNamePtr gn(GENERAL_NAME_new());
    if (ia5 == nullptr || gn == nullptr ||
        ASN1_STRING_set(ia5.get(), name.data(), static_cast<int>(name.size())) != 1) {
      return OpenSslError("DNS SAN");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());
    if (sk_GENERAL_NAME_push(sans.get(), gn.get()) == 0) return OpenSslError("DNS SAN");
    (void)gn.release();  // now owned by `sans`
  }
  return sans;
}

absl::StatusOr<X509Ptr> CreateRoot(EVP_PKEY* key, std::string_view trust_domain,
                                   std::chrono::system_clock::time_point now) {
  X509Ptr cert(X509_new());
  if (cert == nullptr) return OpenSslError("X509_new");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) return OpenSslError("X509_set_version");
  ZM_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  X509_NAME* name = X509_get_subject_name(cert.get());
  std::string td(trust_domain);
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(td.c_str()), -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("zmesh root CA"), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return OpenSslError("root subject");
  }
  ZM_RETURN_IF_ERROR(SetValidity(cert.get(), ToTimeT(now - CertificateAuthority::kClockSkew),
                                 ToTimeT(now + CertificateAuthority::kRootLifetime)));
  if (X509_set_pubkey(cert.get(), key) != 1) return OpenSslError("X509_set_pubkey");
  ZM_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  ZM_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  ZM_RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key, DigestFor(key)) <= 0) return OpenSslError("X509_sign(root)");
  return cert;
}

}  // namespace

absl::StatusOr<CertificateAuthority> CertificateAuthority::FromParts(X509Ptr cert, EvpPkeyPtr key,
                                                                     std::string trust_domain,
                                                                     const Clock& clock,
                                                                     std::string_view cert_source) {
  if (trust_domain.empty()) return absl::InvalidArgumentError("CA: empty trust domain");
  // The trust domain must be one a SPIFFE ID can carry.
  if (auto probe = SpiffeId::Parse(StrCat("spiffe://", trust_domain, "/ns/a/sa/b")); !probe.ok()) {
    return absl::InvalidArgumentError(StrCat("CA: invalid trust domain \"", trust_domain, "\""));
  }
  if (X509_check_ca(cert.get()) < 1) {
    return absl::FailedPreconditionError(StrCat(cert_source, ": not a CA certificate"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ClearOpenSslErrors();
    return absl::FailedPreconditionError(
        StrCat(cert_source, ": the private key does not match the certificate"));
  }
  time_t now = ToTimeT(clock.Now());
  if (X509_cmp_time(X509_get0_notBefore(cert.get()), &now) > 0) {
    return absl::FailedPreconditionError(StrCat(cert_source, ": root certificate not yet valid"));
  }
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), &now) < 0) {
    return absl::FailedPreconditionError(StrCat(cert_source, ": root certificate has expired"));
  }
  ZM_ASSIGN_OR_RETURN(std::string pem, CertToPem(cert.get()));
  return CertificateAuthority(std::move(cert), std::move(key), std::move(pem),
                              std::move(trust_domain), clock);
}

absl::StatusOr<CertificateAuthority> CertificateAuthority::FromPem(
    std::string_view cert_pem, std::string_view key_pem, std::string trust_domain,
    const Clock& clock, std::string_view cert_source, std::string_view key_source) {
  ZM_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(cert_pem, cert_source));
  ZM_ASSIGN_OR_RETURN(EvpPkeyPtr key, PrivateKeyFromPem(key_pem, key_source));
  return FromParts(std::move(cert), std::move(key), std::move(trust_domain), clock, cert_source);
}

absl::StatusOr<CertificateAuthority::GeneratedRoot> CertificateAuthority::GenerateRoot(
    std::string_view trust_domain, const Clock& clock) {
  ZM_ASSIGN_OR_RETURN(EvpPkeyPtr key, GenerateEcP256Key());
  ZM_ASSIGN_OR_RETURN(X509Ptr cert, CreateRoot(key.get(), trust_domain, clock.Now()));
  GeneratedRoot out;
  ZM_ASSIGN_OR_RETURN(out.key_pem, PrivateKeyToPem(key.get()));
  ZM_ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  return out;
}

absl::StatusOr<CertificateAuthority> CertificateAuthority::LoadOrCreate(
    const std::string& cert_path, const std::string& key_path, std::string trust_domain,
    const Clock& clock) {
  bool have_cert = Exists(cert_path);
  bool have_key = Exists(key_path);
  if (have_cert != have_key) {
    return absl::FailedPreconditionError(
        have_cert ? StrCat(cert_path, " exists but ", key_path, " does not")
                  : StrCat(key_path, " exists but ", cert_path, " does not"));
  }
  if (have_cert) {
    ZM_ASSIGN_OR_RETURN(X509Ptr cert, LoadCertFile(cert_path));
    ZM_ASSIGN_OR_RETURN(EvpPkeyPtr key, LoadPrivateKeyFile(key_path));
    ZM_ASSIGN_OR_RETURN(
        CertificateAuthority ca,
        FromParts(std::move(cert), std::move(key), std::move(trust_domain), clock, cert_path));
    L().info("loaded root CA from {} for trust domain {}", cert_path, ca.trust_domain());
    return ca;
  }
  ZM_ASSIGN_OR_RETURN(GeneratedRoot fresh, GenerateRoot(trust_domain, clock));
  // The key first: a crash in between leaves a key without a certificate, which the next
  // start refuses by name instead of silently minting a second root.
  ZM_RETURN_IF_ERROR(WriteFileAtomically(key_path, fresh.key_pem, 0600));
  ZM_RETURN_IF_ERROR(WriteFileAtomically(cert_path, fresh.cert_pem, 0644));
  ZM_ASSIGN_OR_RETURN(
      CertificateAuthority ca,
      FromPem(fresh.cert_pem, fresh.key_pem, std::move(trust_domain), clock, cert_path, key_path));
  L().info("created root CA {} (key {}) for trust domain {}", cert_path, key_path,
           ca.trust_domain());
  return ca;
}

bool IsDnsName(std::string_view s, bool allow_wildcard) {
  if (allow_wildcard && s.rfind("*.", 0) == 0) s.remove_prefix(2);
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

struct CertificateAuthority::LeafProfile {
  std::string_view subject_cn;  // empty: an empty subject, and so a critical SAN
  GENERAL_NAMES* san;
  const char* key_usage;
  const char* ext_key_usage;
};

absl::StatusOr<std::vector<std::string>> CertificateAuthority::SignLeaf(
    EVP_PKEY* public_key, const LeafProfile& profile, std::chrono::seconds ttl) const {
  if (ttl <= std::chrono::seconds(0)) {
    return absl::InvalidArgumentError(StrCat("ttl must be positive, got ", ttl.count(), "s"));
  }
  auto now = clock_->Now();
  time_t not_before = ToTimeT(now - kClockSkew);
  time_t not_after = ToTimeT(now + ttl);
  time_t root_end = 0;
  {
    struct tm tm {};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert_.get()), &tm) == 1) root_end = timegm(&tm);
  }
  if (root_end != 0) not_after = std::min(not_after, root_end);
  if (not_after <= ToTimeT(now)) return absl::FailedPreconditionError("CA root has expired");

  X509Ptr leaf(X509_new());
  if (leaf == nullptr) return OpenSslError("X509_new");
  if (X509_set_version(leaf.get(), X509_VERSION_3) != 1) return OpenSslError("X509_set_version");
  ZM_RETURN_IF_ERROR(SetRandomSerial(leaf.get()));
  if (X509_set_issuer_name(leaf.get(), X509_get_subject_name(cert_.get())) != 1) {
    return OpenSslError("X509_set_issuer_name");
  }
  if (!profile.subject_cn.empty()) {
    std::string cn(profile.subject_cn);
    if (X509_NAME_add_entry_by_txt(X509_get_subject_name(leaf.get()), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                   0) != 1) {
      return OpenSslError("leaf subject");
    }
  }
  ZM_RETURN_IF_ERROR(SetValidity(leaf.get(), not_before, not_after));
  if (X509_set_pubkey(leaf.get(), public_key) != 1) return OpenSslError("X509_set_pubkey");
  X509* issuer = cert_.get();
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), issuer, NID_key_usage, profile.key_usage));
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), issuer, NID_ext_key_usage, profile.ext_key_usage));
  ZM_RETURN_IF_ERROR(AddExt(leaf.get(), issuer, NID_authority_key_identifier, "keyid"));
  // With an empty subject the SAN is critical (RFC 5280 4.2.1.6).
  int san_critical = profile.subject_cn.empty() ? 1 : 0;
  if (X509_add1_ext_i2d(leaf.get(), NID_subject_alt_name, profile.san, san_critical,
                        X509V3_ADD_DEFAULT) != 1) {
    return OpenSslError("X509_add1_ext_i2d(subjectAltName)");
  }
  if (X509_sign(leaf.get(), key_.get(), DigestFor(key_.get())) <= 0) {
    return OpenSslError("X509_sign(leaf)");
  }
  ZM_ASSIGN_OR_RETURN(std::string leaf_pem, CertToPem(leaf.get()));
  return std::vector<std::string>{std::move(leaf_pem), root_pem_};
}

absl::StatusOr<std::vector<std::string>> CertificateAuthority::Sign(
    std::string_view csr_pem, const SpiffeId& authorized, std::chrono::seconds ttl) const {
  ZM_ASSIGN_OR_RETURN(ParsedCsr csr, ParseCsr(csr_pem));
  if (csr.identity.trust_domain != trust_domain_) {
    return absl::PermissionDeniedError(
        StrCat("CSR for ", csr.identity.ToString(), " is outside trust domain ", trust_domain_));
  }
  if (csr.identity != authorized) {
    return absl::PermissionDeniedError(StrCat("CSR asks for ", csr.identity.ToString(), ", only ",
                                              authorized.ToString(), " is authorized"));
  }
  ZM_ASSIGN_OR_RETURN(GeneralNamesPtr san, SpiffeSan(csr.identity));
  return SignLeaf(csr.public_key.get(),
                  {.subject_cn = {},
                   .san = san.get(),
                   .key_usage = "critical,digitalSignature,keyAgreement",
                   .ext_key_usage = "serverAuth,clientAuth"},
                  std::min(ttl, kMaxTtl));
}

absl::StatusOr<std::vector<std::string>> CertificateAuthority::SignServer(
    EVP_PKEY* public_key, const std::vector<std::string>& dns_names,
    std::chrono::seconds ttl) const {
  if (public_key == nullptr) return absl::InvalidArgumentError("server certificate: no key");
  if (dns_names.empty()) return absl::InvalidArgumentError("server certificate: no DNS name");
  for (const std::string& name : dns_names) {
    if (!IsDnsName(name, /*allow_wildcard=*/true)) {
      return absl::InvalidArgumentError(
          StrCat("server certificate: \"", name, "\" is not a lower-case DNS name"));
    }
  }
  ZM_ASSIGN_OR_RETURN(GeneralNamesPtr san, DnsSans(dns_names));
  return SignLeaf(public_key,
                  {.subject_cn = dns_names.front(),
                   .san = san.get(),
                   .key_usage = "critical,digitalSignature",
                   .ext_key_usage = "serverAuth"},
                  ttl);
}

}  // namespace zm::tls

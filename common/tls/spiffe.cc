#include "common/tls/spiffe.h"

#include <openssl/x509v3.h>

#include <optional>

#include "common/base/strings.h"
#include "common/tls/ossl.h"

namespace zm::tls {
namespace {

constexpr std::string_view kScheme = "spiffe://";

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Trust domain: SPIFFE's charset for it, [a-z0-9.-_], at most 255 characters, and neither
// starting nor ending with a dot or a dash.
std::optional<std::string> TrustDomainProblem(std::string_view td) {
  if (td.empty()) return "empty trust domain";
  if (td.size() > 255) return "trust domain longer than 255 characters";
  for (char c : td) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-' && c != '_') {
      return StrCat("trust domain has a forbidden character '", std::string_view(&c, 1), "'");
    }
  }
  if (td.front() == '.' || td.front() == '-' || td.back() == '.' || td.back() == '-') {
    return "trust domain starts or ends with '.' or '-'";
  }
  if (td.find("..") != std::string_view::npos) return "trust domain has an empty label";
  return std::nullopt;
}

// Namespace: a DNS-1123 label. Service account: a DNS-1123 subdomain.
std::optional<std::string> NameProblem(std::string_view what, std::string_view v, bool dots,
                                       size_t max) {
  if (v.empty()) return StrCat("empty ", what);
  if (v.size() > max) return StrCat(what, " longer than ", max, " characters");
  for (char c : v) {
    if (!IsLowerAlnum(c) && c != '-' && !(dots && c == '.')) {
      return StrCat(what, " has a forbidden character '", std::string_view(&c, 1), "'");
    }
  }
  if (!IsLowerAlnum(v.front()) || !IsLowerAlnum(v.back())) {
    return StrCat(what, " must start and end with a letter or digit");
  }
  if (dots && v.find("..") != std::string_view::npos) return StrCat(what, " has an empty label");
  return std::nullopt;
}

}  // namespace

absl::StatusOr<SpiffeId> SpiffeId::ForServiceAccount(std::string_view trust_domain,
                                                     std::string_view ns, std::string_view sa) {
  return Parse(StrCat("spiffe://", trust_domain, "/ns/", ns, "/sa/", sa.empty() ? "default" : sa));
}

absl::StatusOr<SpiffeId> SpiffeId::Parse(std::string_view uri) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("invalid SPIFFE ID \"", uri, "\": ", why));
  };
  if (uri.substr(0, kScheme.size()) != kScheme) return bad("scheme must be spiffe://");
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad("no path");
  std::string_view td = rest.substr(0, slash);
  if (auto p = TrustDomainProblem(td)) return bad(*p);
  std::string_view path = rest.substr(slash);  // "/ns/x/sa/y"
  // Four segments exactly: "", "ns", <ns>, "sa", <sa> after splitting on '/'.
  std::string_view segs[4];
  size_t n = 0;
  std::string_view p = path.substr(1);
  while (true) {
    size_t next = p.find('/');
    if (n == 4) return bad("path must be /ns/<namespace>/sa/<service-account>");
    segs[n++] = p.substr(0, next);
    if (next == std::string_view::npos) break;
    p = p.substr(next + 1);
  }
  if (n != 4 || segs[0] != "ns" || segs[2] != "sa") {
    return bad("path must be /ns/<namespace>/sa/<service-account>");
  }
  if (auto pr = NameProblem("namespace", segs[1], /*dots=*/false, 63)) return bad(*pr);
  if (auto pr = NameProblem("service account", segs[3], /*dots=*/true, 253)) return bad(*pr);
  return SpiffeId{std::string(td), std::string(segs[1]), std::string(segs[3])};
}

std::string SpiffeId::ToString() const { return StrCat(kScheme, Principal()); }

std::string SpiffeId::Principal() const { return StrCat(trust_domain, "/ns/", ns, "/sa/", sa); }

absl::StatusOr<SpiffeId> SpiffeIdOfCert(X509* cert) {
  if (cert == nullptr) return absl::InvalidArgumentError("no certificate");
  int crit = 0;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  if (names == nullptr) {
    ClearOpenSslErrors();
    if (crit == -2) {
      return absl::InvalidArgumentError("certificate has more than one subjectAltName extension");
    }
    return absl::InvalidArgumentError("certificate has no subjectAltName (no SPIFFE ID)");
  }
  std::optional<std::string> uri;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_URI) continue;
    if (uri.has_value()) return absl::InvalidArgumentError("certificate has more than one URI SAN");
    const ASN1_IA5STRING* s = gn->d.uniformResourceIdentifier;
    uri.emplace(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                static_cast<size_t>(ASN1_STRING_length(s)));
  }
  if (!uri.has_value())
    return absl::InvalidArgumentError("certificate has no URI SAN (no SPIFFE ID)");
  if (uri->find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("certificate URI SAN contains a NUL byte");
  }
  return SpiffeId::Parse(*uri);
}

absl::StatusOr<GeneralNamesPtr> SpiffeSan(const SpiffeId& id) {
  std::string uri = id.ToString();
  Asn1Ia5StringPtr ia5(ASN1_IA5STRING_new());
  if (ia5 == nullptr || ASN1_STRING_set(ia5.get(), uri.data(), static_cast<int>(uri.size())) != 1) {
    return OpenSslError("ASN1_STRING_set(URI SAN)");
  }
  GeneralNamePtr gn(GENERAL_NAME_new());
  if (gn == nullptr) return OpenSslError("GENERAL_NAME_new");
  GENERAL_NAME_set0_value(gn.get(), GEN_URI, ia5.release());
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr || sk_GENERAL_NAME_push(names.get(), gn.get()) == 0) {
    return OpenSslError("sk_GENERAL_NAME_push");
  }
  (void)gn.release();  // now owned by `names`
  return names;
}

}  // namespace zm::tls

#include "common/tls/ca.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/tls/csr.h"
#include "common/tls/pem.h"
#include "tests/common/tls/tls_test_util.h"

namespace zm::tls {
namespace {

using ::testing::HasSubstr;
using tlstest::Id;
using tlstest::TempDir;
using namespace std::chrono_literals;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

time_t Asn1ToTimeT(const ASN1_TIME* t) {
  struct tm tm {};
  EXPECT_EQ(ASN1_TIME_to_tm(t, &tm), 1);
  return timegm(&tm);
}

time_t ToTimeT(std::chrono::system_clock::time_point t) {
  return std::chrono::system_clock::to_time_t(t);
}

class CaFilesTest : public ::testing::Test {
 protected:
  absl::StatusOr<CertificateAuthority> Load() {
    return CertificateAuthority::LoadOrCreate(cert_, key_, "cluster.local", clock_);
  }
  FakeClock clock_;
  TempDir dir_;
  std::string cert_ = dir_.File("ca.pem");
  std::string key_ = dir_.File("ca-key.pem");
};

TEST_F(CaFilesTest, CreatesRootWithPrivateKeyFile) {
  auto ca = Load();
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ModeOf(key_), 0600u);
  EXPECT_EQ(ModeOf(cert_), 0644u);
  EXPECT_EQ(*ReadFile(cert_), ca->RootPem());

  X509* root = ca->root();
  EXPECT_EQ(X509_check_ca(root), 1);
  EXPECT_NE(X509_get_extension_flags(root) & EXFLAG_SS, 0u);  // self-signed
  EXPECT_EQ(X509_get_key_usage(root), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EvpPkeyPtr pub(X509_get_pubkey(root));
  EXPECT_EQ(EVP_PKEY_get_base_id(pub.get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(pub.get()), 256);
  time_t now = ToTimeT(clock_.Now());
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notBefore(root)), now - 60);
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notAfter(root)), now + 3650LL * 24 * 3600);
  char o[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(root), NID_organizationName, o, sizeof(o));
  EXPECT_STREQ(o, "cluster.local");
}

TEST_F(CaFilesTest, ReloadsTheSameRoot) {
  auto first = Load();
  ASSERT_TRUE(first.ok()) << first.status();
  clock_.Advance(24h);
  auto second = Load();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->RootPem(), first->RootPem());
  // And the reloaded key signs: its leaf verifies under the first root.
  auto creds = tlstest::Mint(*second, Id("spiffe://cluster.local/ns/a/sa/b"));
  ASSERT_TRUE(creds.ok()) << creds.status();
  EvpPkeyPtr root_key(X509_get_pubkey(first->root()));
  EXPECT_EQ(X509_verify(creds->leaf(), root_key.get()), 1);
}

TEST_F(CaFilesTest, RefusesKeyReadableByOthers) {
  ASSERT_TRUE(Load().ok());
  ASSERT_EQ(::chmod(key_.c_str(), 0644), 0);
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(ca.status().message(), HasSubstr(key_ + ": private key file has mode 0644"));
}

TEST_F(CaFilesTest, RefusesKeyThatDoesNotMatch) {
  ASSERT_TRUE(Load().ok());
  TempDir other;
  ASSERT_TRUE(CertificateAuthority::LoadOrCreate(other.File("ca.pem"), other.File("ca-key.pem"),
                                                 "cluster.local", clock_)
                  .ok());
  std::filesystem::copy_file(other.File("ca-key.pem"), key_,
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(ModeOf(key_), 0600u);
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.status().message(), HasSubstr("does not match"));
  EXPECT_THAT(ca.status().message(), HasSubstr(cert_));
}

TEST_F(CaFilesTest, RefusesHalfAPair) {
  ASSERT_TRUE(Load().ok());
  ASSERT_EQ(::unlink(cert_.c_str()), 0);
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.status().message(), HasSubstr(key_ + " exists but " + cert_ + " does not"));
  EXPECT_FALSE(std::filesystem::exists(cert_));  // no second root minted
}

TEST_F(CaFilesTest, MalformedCertificateIsNamed) {
  ASSERT_TRUE(Load().ok());
  ASSERT_TRUE(WriteFileAtomically(cert_, "-----BEGIN CERTIFICATE-----\nAAAA\n", 0644).ok());
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.status().message(), cert_ + ": not a PEM certificate");
}

TEST_F(CaFilesTest, MalformedKeyIsNamed) {
  ASSERT_TRUE(Load().ok());
  ASSERT_TRUE(WriteFileAtomically(key_, "junk", 0600).ok());
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.status().message(), HasSubstr(key_ + ": not a PEM private key"));
}

TEST_F(CaFilesTest, RefusesExpiredRoot) {
  ASSERT_TRUE(Load().ok());
  clock_.Advance(std::chrono::hours(24 * 3651));
  auto ca = Load();
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(ca.status().message(), HasSubstr("root certificate has expired"));
}

class CaSignTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  tlstest::TestCa ca_{clock_};
  EvpPkeyPtr key_ = *GenerateEcP256Key();
  SpiffeId id_ = Id("spiffe://cluster.local/ns/foo/sa/bar");
};

TEST_F(CaSignTest, LeafHasTheMeshProfile) {
  clock_.Advance(1h);
  auto chain = ca_->Sign(*BuildCsr(key_.get(), id_), id_, 24h);
  ASSERT_TRUE(chain.ok()) << chain.status();
  ASSERT_EQ(chain->size(), 2u);
  EXPECT_EQ((*chain)[1], ca_->RootPem());
  X509Ptr leaf = *CertFromPem((*chain)[0]);

  EXPECT_EQ(*SpiffeIdOfCert(leaf.get()), id_);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_NE(X509_get_extension_flags(leaf.get()) & EXFLAG_BCONS, 0u);  // CA:FALSE present
  EXPECT_EQ(X509_get_key_usage(leaf.get()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT));
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()),
            static_cast<uint32_t>(XKU_SSL_SERVER | XKU_SSL_CLIENT));
  // Only a URI SAN, critical; the subject is empty.
  int crit = 0;
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(leaf.get(), NID_subject_alt_name, &crit, nullptr)));
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(crit, 1);
  ASSERT_EQ(sk_GENERAL_NAME_num(names.get()), 1);
  EXPECT_EQ(sk_GENERAL_NAME_value(names.get(), 0)->type, GEN_URI);
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf.get())), 0);
  // The key is the CSR's; the signature is the root's.
  EvpPkeyPtr pub(X509_get_pubkey(leaf.get()));
  EXPECT_EQ(EVP_PKEY_eq(pub.get(), key_.get()), 1);
  EvpPkeyPtr root_pub(X509_get_pubkey(ca_->root()));
  EXPECT_EQ(X509_verify(leaf.get(), root_pub.get()), 1);
  // Lifetime from the injected clock, with 60 s of skew allowance.
  time_t now = ToTimeT(clock_.Now());
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notBefore(leaf.get())), now - 60);
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notAfter(leaf.get())), now + 24 * 3600);
  // A 128-bit positive serial.
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf.get()), nullptr));
  EXPECT_EQ(BN_num_bytes(serial.get()), 16);
  EXPECT_FALSE(BN_is_negative(serial.get()));
}

TEST_F(CaSignTest, SerialsDiffer) {
  std::string csr = *BuildCsr(key_.get(), id_);
  X509Ptr a = *CertFromPem((*ca_->Sign(csr, id_, 1h))[0]);
  X509Ptr b = *CertFromPem((*ca_->Sign(csr, id_, 1h))[0]);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a.get()), X509_get0_serialNumber(b.get())), 0);
}

TEST_F(CaSignTest, CapsTtl) {
  auto chain = ca_->Sign(*BuildCsr(key_.get(), id_), id_, std::chrono::hours(24 * 365));
  ASSERT_TRUE(chain.ok()) << chain.status();
  X509Ptr leaf = *CertFromPem((*chain)[0]);
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notAfter(leaf.get())), ToTimeT(clock_.Now()) + 30 * 24 * 3600);
}

TEST_F(CaSignTest, RefusesNonPositiveTtl) {
  auto chain = ca_->Sign(*BuildCsr(key_.get(), id_), id_, 0s);
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CaSignTest, RefusesCsrForAnotherIdentity) {
  SpiffeId other = Id("spiffe://cluster.local/ns/foo/sa/admin");
  auto chain = ca_->Sign(*BuildCsr(key_.get(), other), id_, 1h);
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(chain.status().message(),
              HasSubstr("asks for spiffe://cluster.local/ns/foo/sa/admin, only "
                        "spiffe://cluster.local/ns/foo/sa/bar is authorized"));
}

TEST_F(CaSignTest, RefusesOtherTrustDomain) {
  SpiffeId other = Id("spiffe://evil.example/ns/foo/sa/bar");
  auto chain = ca_->Sign(*BuildCsr(key_.get(), other), other, 1h);
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(chain.status().message(), HasSubstr("outside trust domain cluster.local"));
}

TEST_F(CaSignTest, RefusesMalformedCsrs) {
  // Two URI SANs, a DNS SAN, a tampered CSR: the CSR checks (csr_test) apply when signing.
  auto with_sans = [&](const char* san) {
    X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_pubkey(req.get(), key_.get());
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
    STACK_OF(X509_EXTENSION)* raw = sk_X509_EXTENSION_new_null();
    X509ExtensionStackPtr exts(raw);
    sk_X509_EXTENSION_push(raw, X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name, san));
    X509_REQ_add_extensions(req.get(), raw);
    X509_REQ_sign(req.get(), key_.get(), EVP_sha256());
    return *CsrToPem(req.get());
  };
  auto two = ca_->Sign(with_sans("URI:spiffe://cluster.local/ns/foo/sa/bar,"
                                 "URI:spiffe://cluster.local/ns/kube-system/sa/admin"),
                       id_, 1h);
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.status().message(), HasSubstr("more than one URI SAN"));
  auto dns =
      ca_->Sign(with_sans("URI:spiffe://cluster.local/ns/foo/sa/bar,DNS:kubernetes"), id_, 1h);
  ASSERT_FALSE(dns.ok());
  EXPECT_THAT(dns.status().message(), HasSubstr("DNS SANs are not allowed"));

  // Tampered: a valid CSR with one byte of the signature flipped.
  X509ReqPtr req = *CsrFromPem(*BuildCsr(key_.get(), id_));
  const ASN1_BIT_STRING* sig = nullptr;
  X509_REQ_get0_signature(req.get(), &sig, nullptr);
  const_cast<unsigned char*>(ASN1_STRING_get0_data(sig))[ASN1_STRING_length(sig) - 1] ^= 0x01;
  auto bad = ca_->Sign(*CsrToPem(req.get()), id_, 1h);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("bad signature"));
}

TEST_F(CaSignTest, NeverOutlivesTheRoot) {
  clock_.Advance(std::chrono::hours(24 * 3650 - 24));  // one day before the root expires
  auto chain = ca_->Sign(*BuildCsr(key_.get(), id_), id_, std::chrono::hours(24 * 7));
  ASSERT_TRUE(chain.ok()) << chain.status();
  X509Ptr leaf = *CertFromPem((*chain)[0]);
  EXPECT_EQ(ASN1_TIME_compare(X509_get0_notAfter(leaf.get()), X509_get0_notAfter(ca_->root())), 0);
}

class CaSignServerTest : public ::testing::Test {
 protected:
  absl::StatusOr<X509Ptr> SignServer(const std::vector<std::string>& names,
                                     std::chrono::seconds ttl) {
    ZM_ASSIGN_OR_RETURN(std::vector<std::string> chain, ca_->SignServer(key_.get(), names, ttl));
    EXPECT_EQ(chain.size(), 2u);
    EXPECT_EQ(chain.back(), ca_->RootPem());
    return CertFromPem(chain.front());
  }

  FakeClock clock_;
  tlstest::TestCa ca_{clock_};
  EvpPkeyPtr key_ = *GenerateEcP256Key();
};

TEST_F(CaSignServerTest, RefusesAnEmptyNameList) {
  auto leaf = SignServer({}, 1h);
  ASSERT_FALSE(leaf.ok());
  EXPECT_EQ(leaf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(leaf.status().message(), HasSubstr("no DNS name"));
}

TEST_F(CaSignServerTest, RefusesANameThatIsNotALowerCaseDnsName) {
  const std::string long_label = std::string(64, 'a') + ".svc";
  std::string long_name;
  while (long_name.size() < 254) long_name += "abcdefghi.";
  long_name += "svc";
  for (const std::string& bad :
       {std::string(""), std::string("UPPER.svc"), std::string("a,IP:1.2.3.4"),
        std::string("-x.svc"), std::string("x-.svc"), std::string("a..b"), std::string(".a"),
        std::string("a."), std::string("*."), std::string("a.*.b"), std::string("a_b.svc"),
        std::string("spiffe://cluster.local/ns/a/sa/b"), long_label, long_name}) {
    auto leaf = SignServer({"zmesh-ca.zmesh-system.svc", bad}, 1h);
    ASSERT_FALSE(leaf.ok()) << bad;
    EXPECT_EQ(leaf.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(leaf.status().message(), HasSubstr("\"" + bad + "\" is not a lower-case DNS name"));
  }
}

TEST_F(CaSignServerTest, ATtlBeyondTheRootEndsWithTheRoot) {
  clock_.Advance(std::chrono::hours(24 * 3650 - 24));  // one day before the root expires
  auto leaf = SignServer({"a.svc"}, std::chrono::hours(24 * 365));
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(ASN1_TIME_compare(X509_get0_notAfter(leaf->get()), X509_get0_notAfter(ca_->root())), 0);
}

TEST_F(CaSignServerTest, RefusesOnceTheRootHasExpired) {
  clock_.Advance(std::chrono::hours(24 * 3651));
  auto leaf = SignServer({"a.svc"}, 1h);
  ASSERT_FALSE(leaf.ok());
  EXPECT_EQ(leaf.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(leaf.status().message(), HasSubstr("CA root has expired"));
}

TEST_F(CaSignServerTest, RefusesNonPositiveTtlAndNoKey) {
  auto zero = SignServer({"a.svc"}, 0s);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(), HasSubstr("ttl must be positive"));
  auto no_key = ca_->SignServer(nullptr, {"a.svc"}, 1h);
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CaSignServerTest, LeafHasTheServerProfile) {
  clock_.Advance(1h);
  // Longer than kMaxTtl: that cap is for workload certificates only.
  const std::chrono::seconds ttl = std::chrono::hours(24 * 365);
  auto leaf = SignServer({"zmesh-ca.zmesh-system.svc", "*.zmesh-ca.svc", "a-b.c0"}, ttl);
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  X509* cert = leaf->get();

  // DNS SANs only, in order; not critical, as the subject names the first.
  int crit = -1;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  ASSERT_NE(names, nullptr);
  EXPECT_EQ(crit, 0);
  ASSERT_EQ(sk_GENERAL_NAME_num(names.get()), 3);
  std::vector<std::string> dns;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    ASSERT_EQ(gn->type, GEN_DNS);
    dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                     static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName)));
  }
  EXPECT_EQ(dns,
            (std::vector<std::string>{"zmesh-ca.zmesh-system.svc", "*.zmesh-ca.svc", "a-b.c0"}));
  EXPECT_FALSE(SpiffeIdOfCert(cert).ok());
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  EXPECT_STREQ(cn, "zmesh-ca.zmesh-system.svc");
  EXPECT_EQ(X509_check_host(cert, "zmesh-ca.zmesh-system.svc", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert, "x.zmesh-ca.svc", 0, 0, nullptr), 1);

  EXPECT_EQ(X509_check_ca(cert), 0);
  EXPECT_NE(X509_get_extension_flags(cert) & EXFLAG_BCONS, 0u);  // CA:FALSE present
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert), static_cast<uint32_t>(XKU_SSL_SERVER));
  // The key is the one given; the signature is the root's.
  EvpPkeyPtr pub(X509_get_pubkey(cert));
  EXPECT_EQ(EVP_PKEY_eq(pub.get(), key_.get()), 1);
  EvpPkeyPtr root_pub(X509_get_pubkey(ca_->root()));
  EXPECT_EQ(X509_verify(cert, root_pub.get()), 1);
  // The validity and serial rules of workload leaves.
  time_t now = ToTimeT(clock_.Now());
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notBefore(cert)), now - 60);
  EXPECT_EQ(Asn1ToTimeT(X509_get0_notAfter(cert)), now + ttl.count());
  BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  EXPECT_EQ(BN_num_bytes(serial.get()), 16);
  EXPECT_FALSE(BN_is_negative(serial.get()));
}

}  // namespace
}  // namespace zm::tls

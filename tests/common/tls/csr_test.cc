#include "common/tls/csr.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>

#include "common/tls/pem.h"
#include "tests/common/tls/tls_test_util.h"

namespace zm::tls {
namespace {

using ::testing::HasSubstr;
using tlstest::Id;

// A CSR signed by `key` with the SANs written in OpenSSL's config syntax (none if null).
std::string CsrWithSans(EVP_PKEY* key, const char* san) {
  X509ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_REQ_set_pubkey(req.get(), key);
  if (san != nullptr) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
    X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name, san));
    EXPECT_NE(ext, nullptr) << OpenSslErrors();
    STACK_OF(X509_EXTENSION)* raw = sk_X509_EXTENSION_new_null();
    X509ExtensionStackPtr exts(raw);
    sk_X509_EXTENSION_push(raw, ext.release());
    X509_REQ_add_extensions(req.get(), raw);
  }
  X509_REQ_sign(req.get(), key, EVP_sha256());
  return *CsrToPem(req.get());
}

// The CSR with `from` replaced by `to` (same length) in its DER encoding, re-armoured.
std::string Tamper(const std::string& pem, std::string_view from, std::string_view to) {
  X509ReqPtr req = *CsrFromPem(pem);
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  OpenSslBytesPtr owned(der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos);
  bytes.replace(at, from.size(), to);
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio(bio.get(), "CERTIFICATE REQUEST", "",
                reinterpret_cast<const unsigned char*>(bytes.data()),
                static_cast<long>(bytes.size()));
  return BioContents(bio.get());
}

class CsrTest : public ::testing::Test {
 protected:
  EvpPkeyPtr key_ = *GenerateEcP256Key();
};

TEST_F(CsrTest, RoundTrip) {
  SpiffeId id = Id("spiffe://cluster.local/ns/foo/sa/bar");
  auto pem = BuildCsr(key_.get(), id);
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_THAT(*pem, HasSubstr("-----BEGIN CERTIFICATE REQUEST-----"));
  auto csr = ParseCsr(*pem);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->identity, id);
  EXPECT_EQ(EVP_PKEY_eq(csr->public_key.get(), key_.get()), 1);
}

TEST_F(CsrTest, RefusesTamperedCsr) {
  std::string pem = *BuildCsr(key_.get(), Id("spiffe://cluster.local/ns/foo/sa/good"));
  std::string evil = Tamper(pem, "sa/good", "sa/evil");
  auto csr = ParseCsr(evil);
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("bad signature"));
}

TEST_F(CsrTest, RefusesNoSan) {
  auto csr = ParseCsr(CsrWithSans(key_.get(), nullptr));
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("no URI SAN"));
}

TEST_F(CsrTest, RefusesTwoUriSans) {
  auto csr = ParseCsr(CsrWithSans(
      key_.get(), "URI:spiffe://cluster.local/ns/a/sa/b,URI:spiffe://cluster.local/ns/a/sa/c"));
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("more than one URI SAN"));
}

TEST_F(CsrTest, RefusesDnsSan) {
  auto csr =
      ParseCsr(CsrWithSans(key_.get(), "URI:spiffe://cluster.local/ns/a/sa/b,DNS:a.example"));
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("DNS SANs are not allowed"));
}

TEST_F(CsrTest, RefusesIpSan) {
  auto csr = ParseCsr(CsrWithSans(key_.get(), "IP:10.0.0.1,URI:spiffe://cluster.local/ns/a/sa/b"));
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("IP SANs are not allowed"));
}

TEST_F(CsrTest, RefusesBadSpiffeUri) {
  auto csr = ParseCsr(CsrWithSans(key_.get(), "URI:spiffe://cluster.local/ns/a"));
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("invalid SPIFFE ID"));
}

TEST_F(CsrTest, RefusesGarbage) {
  auto csr = ParseCsr("not a csr");
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("not a PEM certificate request"));
}

TEST_F(CsrTest, RefusesWeakRsaKey) {
  EvpPkeyPtr rsa(EVP_RSA_gen(1024));
  ASSERT_NE(rsa, nullptr);
  auto csr = ParseCsr(*BuildCsr(rsa.get(), Id("spiffe://cluster.local/ns/a/sa/b")));
  ASSERT_FALSE(csr.ok());
  EXPECT_THAT(csr.status().message(), HasSubstr("at least 2048"));
}

}  // namespace
}  // namespace zm::tls

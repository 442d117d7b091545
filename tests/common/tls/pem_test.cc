#include "common/tls/pem.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/common/tls/tls_test_util.h"

namespace zm::tls {
namespace {

using ::testing::HasSubstr;
using tlstest::TempDir;

void WriteText(const std::string& path, std::string_view text, mode_t mode = 0644) {
  ASSERT_TRUE(WriteFileAtomically(path, text, mode).ok());
}

TEST(PemTest, KeyRoundTrip) {
  auto key = GenerateEcP256Key();
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(EVP_PKEY_get_base_id(key->get()), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(key->get()), 256);
  auto pem = PrivateKeyToPem(key->get());
  ASSERT_TRUE(pem.ok());
  EXPECT_THAT(*pem, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  auto back = PrivateKeyFromPem(*pem);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EVP_PKEY_eq(key->get(), back->get()), 1);
}

TEST(PemTest, RefusesEncryptedKeyWithoutPrompting) {
  EvpPkeyPtr key = *GenerateEcP256Key();
  BioPtr bio(BIO_new(BIO_s_mem()));
  static char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key.get(), EVP_aes_128_cbc(), pass, 6, nullptr,
                                          nullptr),
            1);
  auto back = PrivateKeyFromPem(BioContents(bio.get()), "enc.pem");
  ASSERT_FALSE(back.ok());
  EXPECT_THAT(back.status().message(), HasSubstr("enc.pem: not a PEM private key"));
}

TEST(PemTest, CertificatesRoundTripAsABundle) {
  FakeClock clock;
  tlstest::TestCa a(clock), b(clock);
  std::string bundle = a->RootPem() + b->RootPem();
  auto certs = CertsFromPem(bundle);
  ASSERT_TRUE(certs.ok()) << certs.status();
  ASSERT_EQ(certs->size(), 2u);
  EXPECT_EQ(*CertToPem((*certs)[0].get()), a->RootPem());
  EXPECT_EQ(*CertsToPem(*certs), bundle);
  // CertFromPem takes the first.
  EXPECT_EQ(*CertToPem(CertFromPem(bundle)->get()), a->RootPem());
}

TEST(PemTest, ErrorsNameTheSource) {
  auto none = CertsFromPem("hello", "roots.pem");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "roots.pem: not a PEM certificate");
  EXPECT_EQ(CertFromPem("", "ca.pem").status().message(), "ca.pem: not a PEM certificate");
  EXPECT_THAT(CsrFromPem("x", "req.pem").status().message(),
              HasSubstr("req.pem: not a PEM certificate request"));
}

TEST(PemTest, CorruptSecondCertificateIsNamed) {
  FakeClock clock;
  tlstest::TestCa a(clock);
  std::string bad =
      a->RootPem() + "-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n";
  auto certs = CertsFromPem(bad, "bundle.pem");
  ASSERT_FALSE(certs.ok());
  EXPECT_THAT(certs.status().message(), HasSubstr("bundle.pem: certificate 2"));
}

TEST(PemFileTest, MalformedFilesAreNamed) {
  TempDir dir;
  std::string ca = dir.File("ca.pem");
  std::string key = dir.File("key.pem");
  WriteText(ca, "garbage\n");
  WriteText(key, "garbage\n", 0600);
  auto cert = LoadCertFile(ca);
  ASSERT_FALSE(cert.ok());
  EXPECT_EQ(cert.status().message(), ca + ": not a PEM certificate");
  auto certs = LoadCertsFile(ca);
  ASSERT_FALSE(certs.ok());
  EXPECT_EQ(certs.status().message(), ca + ": not a PEM certificate");
  auto k = LoadPrivateKeyFile(key);
  ASSERT_FALSE(k.ok());
  EXPECT_THAT(k.status().message(), HasSubstr(key + ": not a PEM private key"));
}

TEST(PemFileTest, MissingFileIsNamed) {
  TempDir dir;
  auto cert = LoadCertFile(dir.File("absent.pem"));
  ASSERT_FALSE(cert.ok());
  EXPECT_THAT(cert.status().message(), HasSubstr("absent.pem"));
  EXPECT_THAT(cert.status().message(), HasSubstr("ENOENT"));
  EXPECT_FALSE(LoadCertFile(dir.path()).ok());  // a directory
}

TEST(PemFileTest, KeyFileMustBePrivate) {
  TempDir dir;
  std::string path = dir.File("key.pem");
  EvpPkeyPtr key = *GenerateEcP256Key();
  WriteText(path, *PrivateKeyToPem(key.get()), 0640);
  auto k = LoadPrivateKeyFile(path);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(k.status().message(), HasSubstr(path + ": private key file has mode 0640"));
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(LoadPrivateKeyFile(path).ok());
}

TEST(PemFileTest, WriteFileAtomicallySetsModeAndReplaces) {
  TempDir dir;
  std::string path = dir.File("f");
  ASSERT_TRUE(WriteFileAtomically(path, "one", 0600).ok());
  ASSERT_TRUE(WriteFileAtomically(path, "two", 0644).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(*ReadFile(path), "two");
  // No temporary left behind.
  int n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace zm::tls

#include "common/tls/spiffe.h"

#include <gtest/gtest.h>

#include <string>

#include "common/tls/pem.h"

namespace zm::tls {
namespace {

struct ParseCase {
  std::string uri;
  bool ok;
  std::string why;  // a fragment of the error, for the bad ones
};

class SpiffeParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(SpiffeParseTest, Parses) {
  const ParseCase& c = GetParam();
  auto id = SpiffeId::Parse(c.uri);
  if (c.ok) {
    ASSERT_TRUE(id.ok()) << c.uri << ": " << id.status();
    EXPECT_EQ(id->ToString(), c.uri);
  } else {
    ASSERT_FALSE(id.ok()) << c.uri << " parsed as " << id->ToString();
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(id.status().message()).find(c.why), std::string::npos) << id.status();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SpiffeParseTest,
    ::testing::Values(
        // Good.
        ParseCase{"spiffe://cluster.local/ns/default/sa/sleep", true, ""},
        ParseCase{"spiffe://example.org/ns/a/sa/b", true, ""},
        ParseCase{"spiffe://td_1-x.example/ns/kube-system/sa/my.sa-1", true, ""},
        ParseCase{"spiffe://localdomain/ns/0/sa/9", true, ""},
        // Bad: scheme.
        ParseCase{"SPIFFE://cluster.local/ns/a/sa/b", false, "scheme"},
        ParseCase{"https://cluster.local/ns/a/sa/b", false, "scheme"},
        ParseCase{"cluster.local/ns/a/sa/b", false, "scheme"}, ParseCase{"", false, "scheme"},
        // Bad: authority.
        ParseCase{"spiffe:///ns/a/sa/b", false, "empty trust domain"},
        ParseCase{"spiffe://cluster.local:443/ns/a/sa/b", false, "forbidden character ':'"},
        ParseCase{"spiffe://user@cluster.local/ns/a/sa/b", false, "forbidden character '@'"},
        ParseCase{"spiffe://Cluster.Local/ns/a/sa/b", false, "forbidden character 'C'"},
        ParseCase{"spiffe://.cluster.local/ns/a/sa/b", false, "starts or ends"},
        ParseCase{"spiffe://cluster.local", false, "no path"},
        // Bad: path shape.
        ParseCase{"spiffe://cluster.local/", false, "path must be"},
        ParseCase{"spiffe://cluster.local/ns/a", false, "path must be"},
        ParseCase{"spiffe://cluster.local/ns/a/sa/b/", false, "path must be"},
        ParseCase{"spiffe://cluster.local/ns/a/sa/b/c", false, "path must be"},
        ParseCase{"spiffe://cluster.local/sa/b/ns/a", false, "path must be"},
        ParseCase{"spiffe://cluster.local/ns//sa/b", false, "empty namespace"},
        ParseCase{"spiffe://cluster.local/ns/a/sa/", false, "empty service account"},
        ParseCase{"spiffe://cluster.local//ns/a/sa/b", false, "path must be"},
        // Bad: query, fragment, encoding, charset.
        ParseCase{"spiffe://cluster.local/ns/a/sa/b?x=1", false, "forbidden character '?'"},
        ParseCase{"spiffe://cluster.local/ns/a/sa/b#frag", false, "forbidden character '#'"},
        ParseCase{"spiffe://cluster.local/ns/a%2f/sa/b", false, "forbidden character '%'"},
        ParseCase{"spiffe://cluster.local/ns/Default/sa/b", false, "forbidden character 'D'"},
        ParseCase{"spiffe://cluster.local/ns/a.b/sa/c", false, "namespace has a forbidden"},
        ParseCase{"spiffe://cluster.local/ns/-a/sa/b", false, "start and end"},
        ParseCase{"spiffe://cluster.local/ns/a/sa/b..c", false, "empty label"},
        ParseCase{std::string("spiffe://cluster.local/ns/a/sa/b\0c", 34), false, "forbidden"},
        ParseCase{"spiffe://cluster.local/ns/" + std::string(64, 'a') + "/sa/b", false,
                  "longer than 63"}));

TEST(SpiffeIdTest, ToStringAndPrincipal) {
  SpiffeId id{"cluster.local", "foo", "sleep"};
  EXPECT_EQ(id.ToString(), "spiffe://cluster.local/ns/foo/sa/sleep");
  EXPECT_EQ(id.Principal(), "cluster.local/ns/foo/sa/sleep");
  EXPECT_EQ(*SpiffeId::Parse(id.ToString()), id);
  EXPECT_NE(id, (SpiffeId{"cluster.local", "foo", "other"}));
}

// A self-signed certificate with the SANs written in OpenSSL's config syntax (or none).
X509Ptr SelfSigned(const char* san) {
  EvpPkeyPtr key = *GenerateEcP256Key();
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  if (san != nullptr) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name, san));
    EXPECT_NE(ext, nullptr) << OpenSslErrors();
    X509_add_ext(cert.get(), ext.get(), -1);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

TEST(SpiffeIdOfCertTest, OneUriSan) {
  X509Ptr cert = SelfSigned("URI:spiffe://cluster.local/ns/a/sa/b,DNS:example.com");
  auto id = SpiffeIdOfCert(cert.get());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->Principal(), "cluster.local/ns/a/sa/b");
}

TEST(SpiffeIdOfCertTest, RefusesTwoUriSans) {
  X509Ptr cert =
      SelfSigned("URI:spiffe://cluster.local/ns/a/sa/b,URI:spiffe://cluster.local/ns/a/sa/c");
  auto id = SpiffeIdOfCert(cert.get());
  ASSERT_FALSE(id.ok());
  EXPECT_NE(std::string(id.status().message()).find("more than one URI SAN"), std::string::npos);
}

TEST(SpiffeIdOfCertTest, RefusesNoSanAndDnsOnly) {
  X509Ptr none = SelfSigned(nullptr);
  EXPECT_FALSE(SpiffeIdOfCert(none.get()).ok());
  X509Ptr dns = SelfSigned("DNS:example.com");
  auto id = SpiffeIdOfCert(dns.get());
  ASSERT_FALSE(id.ok());
  EXPECT_NE(std::string(id.status().message()).find("no URI SAN"), std::string::npos);
}

TEST(SpiffeIdOfCertTest, RefusesUnparsableUri) {
  X509Ptr cert = SelfSigned("URI:spiffe://cluster.local/ns/a/sa/b/extra");
  auto id = SpiffeIdOfCert(cert.get());
  ASSERT_FALSE(id.ok());
  EXPECT_NE(std::string(id.status().message()).find("path must be"), std::string::npos);
}

}  // namespace
}  // namespace zm::tls

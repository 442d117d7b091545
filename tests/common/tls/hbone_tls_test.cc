// HBONE TLS policy: real OpenSSL handshakes over a socketpair, certificates minted by our CA on
// a FakeClock that is also the contexts' verification clock. Negative cases first.

#include "common/tls/hbone_tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/tls/tls_test_util.h"

namespace zm::tls {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using tlstest::Connect;
using tlstest::Exchange;
using tlstest::Handshake;
using tlstest::Id;
using tlstest::Mint;
using tlstest::Outcome;
using tlstest::SslPair;
using tlstest::TestCa;
using namespace std::chrono_literals;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

class HboneTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The root is a day older than the workload certificates.
    clock_.Advance(24h);
    roots_.emplace(*RootBundle::FromPem(ca_->RootPem()));
  }

  SslCtxPtr Server(const Credentials& creds, const RootBundle* roots = nullptr,
                   std::string td = "cluster.local") {
    auto ctx = MakeServerContext(creds, roots ? *roots : *roots_, std::move(td), clock_);
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return ctx.ok() ? *std::move(ctx) : nullptr;
  }
  SslCtxPtr Client(const Credentials& creds, const RootBundle* roots = nullptr,
                   std::string td = "cluster.local") {
    auto ctx = MakeClientContext(creds, roots ? *roots : *roots_, std::move(td), clock_);
    EXPECT_TRUE(ctx.ok()) << ctx.status();
    return ctx.ok() ? *std::move(ctx) : nullptr;
  }
  Credentials MintOk(const CertificateAuthority& ca, const SpiffeId& id,
                     std::chrono::seconds ttl = 24h) {
    auto c = Mint(ca, id, ttl);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }
  // A connection whose client expects `expected` (the server's identity by default).
  SslPair Pair(SSL_CTX* client, SSL_CTX* server, std::vector<SpiffeId> expected = {}) {
    SslPair p = Connect(client, server);
    if (expected.empty()) expected = {server_id_};
    EXPECT_TRUE(SetExpectedIdentities(p.client.get(), expected).ok());
    return p;
  }

  FakeClock clock_;
  TestCa ca_{clock_};
  std::optional<RootBundle> roots_;
  SpiffeId server_id_ = Id("spiffe://cluster.local/ns/backend/sa/api");
  SpiffeId client_id_ = Id("spiffe://cluster.local/ns/frontend/sa/web");
};

TEST_F(HboneTlsTest, SecureNamingRefusesUnexpectedServerAndServerCarriesOn) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);

  SpiffeId wanted = Id("spiffe://cluster.local/ns/backend/sa/payments");
  SslPair bad = Pair(client.get(), server.get(), {wanted, Id("spiffe://cluster.local/ns/x/sa/y")});
  Outcome o = Handshake(bad);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client),
              HasSubstr("peer spiffe://cluster.local/ns/backend/sa/api is not one of the expected "
                        "identities [spiffe://cluster.local/ns/backend/sa/payments, "
                        "spiffe://cluster.local/ns/x/sa/y]"));
  EXPECT_EQ(o.client.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(FailureReason(bad.client.get()), HasSubstr("is not one of the expected identities"));
  EXPECT_FALSE(o.server.ok());  // told by the client's alert
  EXPECT_THAT(Msg(o.server), HasSubstr("peer sent fatal alert"));

  // The same server context serves the next, correct client.
  SslPair good = Pair(client.get(), server.get(), {wanted, server_id_});
  Outcome ok = Handshake(good);
  ASSERT_TRUE(ok.client.ok()) << ok.client;
  ASSERT_TRUE(ok.server.ok()) << ok.server;
  EXPECT_TRUE(Exchange(good).ok());
}

TEST_F(HboneTlsTest, ClientWithoutExpectedIdentitiesFailsClosed) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  SslPair p = Connect(client.get(), server.get());  // no SetExpectedIdentities
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("no expected identities were set"));
}

TEST_F(HboneTlsTest, ExpiredServerCertificate) {
  Credentials server_creds = MintOk(*ca_, server_id_, 1h);
  Credentials client_creds = MintOk(*ca_, client_id_, 24h);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  clock_.Advance(2h);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("server spiffe://cluster.local/ns/backend/sa/api "
                                       "certificate rejected: certificate has expired"));
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("peer sent fatal alert: certificate expired"));
}

TEST_F(HboneTlsTest, ExpiredClientCertificate) {
  Credentials server_creds = MintOk(*ca_, server_id_, 24h);
  Credentials client_creds = MintOk(*ca_, client_id_, 1h);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  clock_.Advance(1h + 1s);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("client spiffe://cluster.local/ns/frontend/sa/web "
                                       "certificate rejected: certificate has expired"));
  EXPECT_EQ(o.server.code(), absl::StatusCode::kUnauthenticated);
  // TLS 1.3: the client finished first and learns of the refusal on its first read.
  absl::Status data = o.client.ok() ? tlstest::ReadN(p.client.get(), 1).status() : o.client;
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(Msg(data), HasSubstr("peer sent fatal alert: certificate expired"));
}

TEST_F(HboneTlsTest, NotYetValidCertificate) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  clock_.Advance(-2min);  // before notBefore (now - 60 s), still inside the root's validity
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("certificate is not yet valid"));
}

TEST_F(HboneTlsTest, WithinClockSkewIsAccepted) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  clock_.Advance(-30s);  // a peer whose clock is 30 s behind the CA's
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  EXPECT_TRUE(o.client.ok()) << o.client;
  EXPECT_TRUE(o.server.ok()) << o.server;
}

TEST_F(HboneTlsTest, ServerCertificateFromAnotherRoot) {
  TestCa other(clock_);
  Credentials server_creds = MintOk(*other, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.client.ok());
  // The chain carries the other root, so OpenSSL meets an untrusted self-signed certificate.
  EXPECT_THAT(Msg(o.client), HasSubstr("server spiffe://cluster.local/ns/backend/sa/api "
                                       "certificate rejected: self-signed certificate in "
                                       "certificate chain"));
}

TEST_F(HboneTlsTest, ClientCertificateFromAnotherRoot) {
  TestCa other(clock_);
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*other, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("client spiffe://cluster.local/ns/frontend/sa/web "
                                       "certificate rejected: self-signed certificate in "
                                       "certificate chain"));
}

TEST_F(HboneTlsTest, OtherTrustDomainIsRefusedEvenWhenTheChainVerifies) {
  TestCa other(clock_, "other.example");
  RootBundle both = *RootBundle::FromPems({ca_->RootPem(), other->RootPem()});
  SpiffeId foreign = Id("spiffe://other.example/ns/backend/sa/api");

  // Server from the other domain: the client refuses it although it expects it.
  Credentials foreign_creds = MintOk(*other, foreign);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr foreign_server = Server(foreign_creds, &both, "other.example");
  SslCtxPtr client = Client(client_creds, &both);
  SslPair p = Pair(client.get(), foreign_server.get(), {foreign});
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("peer spiffe://other.example/ns/backend/sa/api is not in "
                                       "trust domain cluster.local"));
}

TEST_F(HboneTlsTest, ServerRefusesClientFromOtherTrustDomain) {
  // A client that accepts any trust domain (ours by configuration) but holds a foreign cert.
  TestCa other(clock_, "other.example");
  RootBundle both = *RootBundle::FromPems({ca_->RootPem(), other->RootPem()});
  Credentials server_creds = MintOk(*ca_, server_id_);
  SslCtxPtr server = Server(server_creds, &both);
  // Built as a cluster.local client and then given the foreign certificate.
  SslCtxPtr client = Client(MintOk(*ca_, client_id_), &both);
  Credentials foreign = MintOk(*other, Id("spiffe://other.example/ns/x/sa/y"));
  ASSERT_EQ(SSL_CTX_use_certificate(client.get(), foreign.leaf()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(client.get(), foreign.key.get()), 1);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("peer spiffe://other.example/ns/x/sa/y is not in trust "
                                       "domain cluster.local"));
}

TEST_F(HboneTlsTest, NoClientCertificate) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  SslCtxPtr server = Server(server_creds);
  // A TLS 1.3 + h2 client with no certificate at all.
  SslCtxPtr client(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(client.get(), TLS1_3_VERSION);
  static constexpr unsigned char kH2[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(client.get(), kH2, sizeof(kH2));
  SSL_CTX_set_verify(client.get(), SSL_VERIFY_NONE, nullptr);
  SslPair p = Connect(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("no client certificate"));
  EXPECT_EQ(o.server.code(), absl::StatusCode::kUnauthenticated);
  absl::Status data = o.client.ok() ? tlstest::ReadN(p.client.get(), 1).status() : o.client;
  ASSERT_FALSE(data.ok());
  EXPECT_THAT(Msg(data), HasSubstr("certificate required"));
}

TEST_F(HboneTlsTest, Tls12OnlyClientIsRefused) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  ASSERT_EQ(SSL_CTX_set_min_proto_version(client.get(), TLS1_2_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(client.get(), TLS1_2_VERSION), 1);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("TLS 1.3 required"));
  EXPECT_EQ(o.server.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("protocol version"));
}

TEST_F(HboneTlsTest, Http11OnlyClientGetsNoApplicationProtocol) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  ASSERT_EQ(SSL_CTX_set_alpn_protos(client.get(), kHttp11, sizeof(kHttp11)), 0);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("client offered ALPN [http/1.1], h2 required"));
  EXPECT_EQ(o.server.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("peer sent fatal alert: no application protocol"));
}

TEST_F(HboneTlsTest, ClientWithoutAlpnGetsNoApplicationProtocol) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  ASSERT_EQ(SSL_CTX_set_alpn_protos(client.get(), nullptr, 0), 0);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("client offered no ALPN, h2 required"));
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("no application protocol"));
}

TEST_F(HboneTlsTest, ClientRefusesServerThatDoesNotSelectH2) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  SSL_CTX_set_alpn_select_cb(server.get(), nullptr, nullptr);  // a server that ignores ALPN
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("server did not select ALPN h2"));
  EXPECT_EQ(o.client.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(HboneTlsTest, ChaCha20OnlyClientIsRefused) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  ASSERT_EQ(SSL_CTX_set_ciphersuites(client.get(), "TLS_CHACHA20_POLY1305_SHA256"), 1);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_FALSE(o.server.ok());
  EXPECT_THAT(Msg(o.server), HasSubstr("no shared cipher suite"));
  ASSERT_FALSE(o.client.ok());
  EXPECT_THAT(Msg(o.client), HasSubstr("handshake failure"));
}

TEST_F(HboneTlsTest, NoSessionTicketsAreIssued) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  // A client that would keep any ticket it is given.
  static int tickets = 0;
  auto keep = [](SSL*, SSL_SESSION*) {
    ++tickets;
    return 0;
  };
  auto ticket_hungry_client = [&] {
    SslCtxPtr c = Client(client_creds);
    SSL_CTX_clear_options(c.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(c.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(c.get(), keep);
    return c;
  };

  // Control: a server with tickets turned back on does issue them, so the counter works.
  SslCtxPtr generous = Server(server_creds);
  SSL_CTX_clear_options(generous.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(generous.get(), SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_num_tickets(generous.get(), 2);
  SslCtxPtr client = ticket_hungry_client();
  {
    tickets = 0;
    SslPair p = Pair(client.get(), generous.get());
    Outcome o = Handshake(p);
    ASSERT_TRUE(o.client.ok() && o.server.ok()) << o.client << " / " << o.server;
    ASSERT_TRUE(Exchange(p).ok());
    EXPECT_GT(tickets, 0);
  }

  SslCtxPtr server = Server(server_creds);
  tickets = 0;
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  ASSERT_TRUE(o.client.ok() && o.server.ok()) << o.client << " / " << o.server;
  ASSERT_TRUE(Exchange(p).ok());
  EXPECT_EQ(tickets, 0);
  EXPECT_FALSE(SSL_session_reused(p.client.get()));
  EXPECT_EQ(SSL_SESSION_is_resumable(SSL_get_session(p.client.get())), 0);
  EXPECT_EQ(SSL_CTX_get_num_tickets(server.get()), 0u);
  // Our own client context caches nothing either.
  SslCtxPtr ours = Client(client_creds);
  EXPECT_EQ(SSL_CTX_get_session_cache_mode(ours.get()), SSL_SESS_CACHE_OFF);
  EXPECT_NE(SSL_CTX_get_options(ours.get()) & SSL_OP_NO_TICKET, 0u);
}

TEST_F(HboneTlsTest, GoodHandshakeBothSidesLearnTheOthersIdentity) {
  Credentials server_creds = MintOk(*ca_, server_id_);
  Credentials client_creds = MintOk(*ca_, client_id_);
  SslCtxPtr server = Server(server_creds), client = Client(client_creds);
  SslPair p =
      Pair(client.get(), server.get(), {Id("spiffe://cluster.local/ns/x/sa/y"), server_id_});
  Outcome o = Handshake(p);
  ASSERT_TRUE(o.client.ok()) << o.client;
  ASSERT_TRUE(o.server.ok()) << o.server;

  auto seen_by_client = PeerIdentity(p.client.get());
  auto seen_by_server = PeerIdentity(p.server.get());
  ASSERT_TRUE(seen_by_client.ok()) << seen_by_client.status();
  ASSERT_TRUE(seen_by_server.ok()) << seen_by_server.status();
  EXPECT_EQ(*seen_by_client, server_id_);
  EXPECT_EQ(*seen_by_server, client_id_);
  EXPECT_EQ(seen_by_server->Principal(), "cluster.local/ns/frontend/sa/web");

  EXPECT_TRUE(VerifyAlpn(p.client.get()).ok());
  EXPECT_TRUE(VerifyAlpn(p.server.get()).ok());
  EXPECT_EQ(SSL_version(p.client.get()), TLS1_3_VERSION);
  EXPECT_THAT(std::string(SSL_get_cipher_name(p.client.get())),
              AnyOf("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"));
  EXPECT_EQ(SSL_get_servername(p.server.get(), TLSEXT_NAMETYPE_host_name), nullptr);  // no SNI
  EXPECT_EQ(FailureReason(p.client.get()), "");
  EXPECT_TRUE(Exchange(p).ok());
}

TEST_F(HboneTlsTest, RootRotationBundleAcceptsBothRoots) {
  TestCa next(clock_);
  RootBundle both = *RootBundle::FromPems({ca_->RootPem(), next->RootPem()});
  EXPECT_EQ(both.size(), 2u);
  Credentials server_creds = MintOk(*next, server_id_);  // already on the new root
  Credentials client_creds = MintOk(*ca_, client_id_);   // still on the old one
  SslCtxPtr server = Server(server_creds, &both), client = Client(client_creds, &both);
  SslPair p = Pair(client.get(), server.get());
  Outcome o = Handshake(p);
  EXPECT_TRUE(o.client.ok()) << o.client;
  EXPECT_TRUE(o.server.ok()) << o.server;
}

TEST_F(HboneTlsTest, ContextRefusesOwnIdentityOutsideTrustDomain) {
  TestCa other(clock_, "other.example");
  Credentials foreign = MintOk(*other, Id("spiffe://other.example/ns/a/sa/b"));
  auto ctx = MakeServerContext(foreign, *roots_, "cluster.local", clock_);
  ASSERT_FALSE(ctx.ok());
  EXPECT_THAT(Msg(ctx.status()), HasSubstr("is not in trust domain cluster.local"));
}

TEST_F(HboneTlsTest, CredentialsAndRootsFromPemAreChecked) {
  Credentials a = MintOk(*ca_, server_id_);
  Credentials b = MintOk(*ca_, client_id_);
  std::string a_chain = *CertsToPem(a.chain);
  auto mismatched = Credentials::FromPem(*PrivateKeyToPem(b.key.get()), a_chain);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_THAT(Msg(mismatched.status()), HasSubstr("does not match"));
  EXPECT_EQ(*a.Identity(), server_id_);
  EXPECT_EQ(a.NotAfter(), clock_.Now() + 24h);

  auto leaf_as_root = RootBundle::FromPem(*CertToPem(a.leaf()), "roots.pem");
  ASSERT_FALSE(leaf_as_root.ok());
  EXPECT_THAT(Msg(leaf_as_root.status()), HasSubstr("roots.pem: certificate 1 is not a CA"));
  EXPECT_FALSE(RootBundle::FromPem("", "roots.pem").ok());
}

}  // namespace
}  // namespace zm::tls

// HBONE sessions over asio::ssl (TLS 1.3, ALPN h2, mutual certificates) on loopback, with a
// throwaway self-signed certificate made here: the session layer must not care what byte
// stream it runs over.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <asio/ssl.hpp>
#include <memory>

#include "tests/common/hbone/hbone_test_util.h"

namespace zm::hbone::testing {
namespace {

using SslStream = asio::ssl::stream<tcp::socket>;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct ExtDeleter {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};

struct SelfSigned {
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key;
  std::unique_ptr<X509, X509Deleter> cert;
};

// ECDSA P-256, URI SAN only, like the mesh's workload certificates.
SelfSigned MakeCert(const char* spiffe_id) {
  SelfSigned s;
  s.key.reset(EVP_EC_gen("P-256"));
  s.cert.reset(X509_new());
  X509* x = s.cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, s.key.get());
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("zmesh-test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  std::string san = zm::StrCat("URI:", spiffe_id);
  std::unique_ptr<X509_EXTENSION, ExtDeleter> ext(
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  X509_add_ext(x, ext.get(), -1);
  X509_sign(x, s.key.get(), EVP_sha256());
  return s;
}

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
             unsigned int inlen, void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* o = nullptr;
  if (SSL_select_next_proto(&o, outlen, kH2, sizeof(kH2), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

// TLS 1.3 only, AES-GCM suites, mandatory peer certificate chained to `trusted`.
void Configure(asio::ssl::context& ctx, const SelfSigned& own, X509* trusted, bool server) {
  SSL_CTX* c = ctx.native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  ASSERT_EQ(SSL_CTX_use_certificate(c, own.cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(c, own.key.get()), 1);
  X509_STORE_add_cert(SSL_CTX_get_cert_store(c), trusted);
  ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  if (server) {
    SSL_CTX_set_alpn_select_cb(c, SelectH2, nullptr);
  } else {
    static const unsigned char kProtos[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(c, kProtos, sizeof(kProtos));
  }
}

std::string Alpn(SslStream& s) {
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(s.native_handle(), &p, &len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

TEST(HboneTlsTest, RelaysOverTls13WithAlpnH2) {
  HboneHarness h;
  h.StartServer();
  SelfSigned server_cert = MakeCert("spiffe://cluster.local/ns/test/sa/server");
  SelfSigned client_cert = MakeCert(kPeerIdentity);
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  Configure(server_ctx, server_cert, client_cert.cert.get(), /*server=*/true);
  Configure(client_ctx, client_cert, server_cert.cert.get(), /*server=*/false);

  tcp::acceptor acceptor(h.ioc());
  std::promise<std::string> server_alpn;
  std::promise<std::string> forwarded;
  uint16_t port = h.Run([&] {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(ep.protocol());
    acceptor.bind(ep);
    acceptor.listen();
    acceptor.async_accept([&](const asio::error_code& ec, tcp::socket sock) {
      ASSERT_FALSE(ec);
      auto tls = std::make_shared<SslStream>(std::move(sock), server_ctx);
      tls->async_handshake(asio::ssl::stream_base::server, [&, tls](const asio::error_code& ec) {
        if (ec) {
          server_alpn.set_value("handshake failed: " + ec.message());
          return;
        }
        server_alpn.set_value(Alpn(*tls));
        // The peer's certificate was verified by the handshake; its identity is opaque here.
        ASSERT_NE(SSL_get0_peer_certificate(tls->native_handle()), nullptr);
        auto session =
            HboneServerSession::Create(MakeTransport(std::move(*tls)), kPeerIdentity,
                                       SessionOptions{}, [&](ConnectRequest req, Responder r) {
                                         forwarded.set_value(req.Find("forwarded").value_or(""));
                                         h.DialAndAccept(req, std::move(r));
                                       });
        session->Start();
      });
    });
    return acceptor.local_endpoint().port();
  });

  auto client_ready = std::make_shared<std::promise<std::shared_ptr<HboneClientSession>>>();
  std::string client_alpn;
  int version = 0;
  h.Run([&] {
    auto tls = std::make_shared<SslStream>(h.ioc(), client_ctx);
    tls->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    tls->async_handshake(asio::ssl::stream_base::client, [&, tls](const asio::error_code& ec) {
      if (ec) {
        client_ready->set_value(nullptr);
        return;
      }
      client_alpn = Alpn(*tls);
      version = SSL_version(tls->native_handle());
      auto c = HboneClientSession::Create(MakeTransport(std::move(*tls)));
      c->Start();
      client_ready->set_value(c);
    });
    return 0;
  });
  auto fut = client_ready->get_future();
  ASSERT_EQ(fut.wait_for(kDeadline), std::future_status::ready);
  auto client = fut.get();
  ASSERT_NE(client, nullptr) << "client handshake failed";
  auto alpn_fut = server_alpn.get_future();
  ASSERT_EQ(alpn_fut.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(alpn_fut.get(), "h2");
  EXPECT_EQ(client_alpn, "h2");
  EXPECT_EQ(version, TLS1_3_VERSION);

  Tunnel t = h.OpenTunnel(client, {{"forwarded", "for=10.0.0.9:5555"}});
  ASSERT_TRUE(t.app && t.upstream);
  const std::string up = Pattern(3 << 20, 5), down = Pattern(2 << 20, 6);
  std::thread a([&] {
    EXPECT_TRUE(SendAll(t.app.get(), up));
    ::shutdown(t.app.get(), SHUT_WR);
  });
  std::thread b([&] {
    EXPECT_TRUE(SendAll(t.upstream.get(), down));
    ::shutdown(t.upstream.get(), SHUT_WR);
  });
  ReadResult at_upstream;
  std::thread reader([&] { at_upstream = ReadUntilEnd(t.upstream.get(), SIZE_MAX, 20s); });
  ReadResult at_app = ReadUntilEnd(t.app.get(), SIZE_MAX, 20s);
  reader.join();
  a.join();
  b.join();
  EXPECT_TRUE(at_app.eof);
  EXPECT_TRUE(at_upstream.eof);
  EXPECT_TRUE(at_upstream.data == up) << at_upstream.data.size();
  EXPECT_TRUE(at_app.data == down) << at_app.data.size();
  ASSERT_EQ(t.client_done.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(t.client_done.get().result, "ok");
  EXPECT_EQ(forwarded.get_future().get(), "for=10.0.0.9:5555");
  h.Run([&] {
    client->Close("test over");
    asio::error_code ignored;
    acceptor.close(ignored);
    return 0;
  });
  h.Stop();
}

}  // namespace
}  // namespace zm::hbone::testing

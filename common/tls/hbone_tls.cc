#include "common/tls/hbone_tls.h"

#include <openssl/err.h>
#include <openssl/tls1.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/pem.h"

namespace zm::tls {
namespace {

// Per SSL_CTX: what the verify callback needs.
struct CtxConfig {
  std::string trust_domain;
  bool server = false;
  const Clock* clock = nullptr;
};

// Per SSL: secure naming input and the first failure reason.
struct ConnState {
  bool has_expected = false;
  std::vector<SpiffeId> expected;
  std::string failure;
  absl::StatusCode failure_code = absl::StatusCode::kUnauthenticated;
};

void FreeCtxConfig(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<CtxConfig*>(ptr);
}
void FreeConnState(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<ConnState*>(ptr);
}
// SSL_dup copies ex_data pointers; give the copy its own state.
int DupConnState(CRYPTO_EX_DATA*, const CRYPTO_EX_DATA*, void** from_d, int, long, void*) {
  if (auto* st = static_cast<ConnState*>(*from_d)) *from_d = new ConnState(*st);
  return 1;
}

int CtxIndex() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeCtxConfig);
  return idx;
}
int SslIndex() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, DupConnState, FreeConnState);
  return idx;
}

const CtxConfig* ConfigOf(const SSL* ssl) {
  return static_cast<const CtxConfig*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), CtxIndex()));
}

ConnState* StateOf(const SSL* ssl) {
  return static_cast<ConnState*>(SSL_get_ex_data(ssl, SslIndex()));
}

ConnState* MutableStateOf(SSL* ssl) {
  ConnState* st = StateOf(ssl);
  if (st == nullptr) {
    st = new ConnState();
    if (SSL_set_ex_data(ssl, SslIndex(), st) != 1) {
      delete st;
      return nullptr;
    }
  }
  return st;
}

// Keeps the first reason a handshake failed.
// Keeps the first reason a handshake failed: kUnauthenticated for certificates and
// identities, kFailedPrecondition for protocol negotiation.
void RecordFailure(SSL* ssl, std::string reason,
                   absl::StatusCode code = absl::StatusCode::kUnauthenticated) {
  ConnState* st = MutableStateOf(ssl);
  if (st != nullptr && st->failure.empty()) {
    st->failure = std::move(reason);
    st->failure_code = code;
  }
}

std::string Join(const std::vector<SpiffeId>& ids) {
  std::string out;
  for (const SpiffeId& id : ids) {
    if (!out.empty()) out += ", ";
    out += id.ToString();
  }
  return out;
}

time_t ToTimeT(std::chrono::system_clock::time_point t) {
  return std::chrono::system_clock::to_time_t(t);
}

// Replaces OpenSSL's chain verification (SSL_CTX_set_cert_verify_callback): the chain at
// the injected clock's time, then the mesh's checks on the leaf.
int VerifyPeerChain(X509_STORE_CTX* xctx, void*) {
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(xctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const CtxConfig* cfg = ssl != nullptr ? ConfigOf(ssl) : nullptr;
  if (cfg == nullptr) {
    X509_STORE_CTX_set_error(xctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  const char* peer = cfg->server ? "client" : "server";
  X509* leaf = X509_STORE_CTX_get0_cert(xctx);
  absl::StatusOr<SpiffeId> id = SpiffeIdOfCert(leaf);
  std::string who = id.ok() ? StrCat(peer, " ", id->ToString()) : std::string(peer);

  X509_STORE_CTX_set_time(xctx, 0, ToTimeT(cfg->clock->Now()));
  if (X509_verify_cert(xctx) != 1) {
    int err = X509_STORE_CTX_get_error(xctx);
    if (err == X509_V_OK) {
      err = X509_V_ERR_UNSPECIFIED;
      X509_STORE_CTX_set_error(xctx, err);
    }
    RecordFailure(ssl, StrCat(who, " certificate rejected: ", X509_verify_cert_error_string(err),
                              " (depth ", X509_STORE_CTX_get_error_depth(xctx), ")"));
    return 0;
  }
  auto reject = [&](std::string reason,
                    absl::StatusCode code = absl::StatusCode::kUnauthenticated) {
    X509_STORE_CTX_set_error(xctx, X509_V_ERR_APPLICATION_VERIFICATION);
    RecordFailure(ssl, std::move(reason), code);
    return 0;
  };
  if (X509_check_ca(leaf) != 0) {
    return reject(StrCat(who, " certificate rejected: it is a CA certificate, not a workload's"));
  }
  if (!id.ok()) {
    return reject(StrCat(peer, " certificate rejected: ", id.status().message()));
  }
  if (id->trust_domain != cfg->trust_domain) {
    return reject(StrCat("peer ", id->ToString(), " is not in trust domain ", cfg->trust_domain));
  }
  if (!cfg->server) {
    // TLS 1.3 sends EncryptedExtensions (ALPN) before the Certificate: refuse early.
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != kHboneAlpn) {
      return reject("server did not select ALPN h2", absl::StatusCode::kFailedPrecondition);
    }
    const ConnState* st = StateOf(ssl);
    if (st == nullptr || !st->has_expected) {
      return reject(StrCat("peer ", id->ToString(),
                           " refused: no expected identities were set (secure naming)"));
    }
    if (std::find(st->expected.begin(), st->expected.end(), *id) == st->expected.end()) {
      return reject(StrCat("peer ", id->ToString(), " is not one of the expected identities [",
                           Join(st->expected), "]"));
    }
  }
  return 1;
}

// Server: a ClientHello without ALPN at all never reaches the select callback.
int RequireAlpnExtension(SSL* ssl, int* alert, void*) {
  const unsigned char* data = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &data,
                                &len) != 1) {
    RecordFailure(ssl, "client offered no ALPN, h2 required",
                  absl::StatusCode::kFailedPrecondition);
    *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

// Server: select h2 or fail with no_application_protocol.
int SelectH2(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
             unsigned int inlen, void*) {
  std::string offered;
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (len == 0 || i + 1 + len > inlen) break;  // malformed; OpenSSL has checked already
    std::string_view proto(reinterpret_cast<const char*>(in + i + 1), len);
    if (proto == kHboneAlpn) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    if (!offered.empty()) offered += ", ";
    offered += proto;
    i += 1 + len;
  }
  RecordFailure(ssl, StrCat("client offered ALPN [", offered, "], h2 required"),
                absl::StatusCode::kFailedPrecondition);
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

absl::StatusOr<SslCtxPtr> MakeContext(bool server, const Credentials& own, const RootBundle& roots,
                                      std::string trust_domain, const Clock& clock) {
  const char* side = server ? "server context" : "client context";
  if (own.key == nullptr || own.leaf() == nullptr) {
    return absl::InvalidArgumentError(StrCat(side, ": credentials without key or certificate"));
  }
  ZM_ASSIGN_OR_RETURN(SpiffeId me, own.Identity());
  if (me.trust_domain != trust_domain) {
    return absl::InvalidArgumentError(
        StrCat(side, ": own identity ", me.ToString(), " is not in trust domain ", trust_domain));
  }
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (ctx == nullptr) return OpenSslError("SSL_CTX_new");
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    return OpenSslError("SSL_CTX_set_{min,max}_proto_version(TLS1_3)");
  }
  if (SSL_CTX_set_ciphersuites(c, kHboneCipherSuites) != 1) {
    return OpenSslError("SSL_CTX_set_ciphersuites");
  }
  if (SSL_CTX_set1_groups_list(c, kHboneGroups) != 1) {
    return OpenSslError("SSL_CTX_set1_groups_list");
  }
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  if (server && SSL_CTX_set_num_tickets(c, 0) != 1) return OpenSslError("SSL_CTX_set_num_tickets");

  if (SSL_CTX_use_certificate(c, own.leaf()) != 1) return OpenSslError("SSL_CTX_use_certificate");
  for (size_t i = 1; i < own.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(c, own.chain[i].get()) != 1) {
      return OpenSslError("SSL_CTX_add1_chain_cert");
    }
  }
  if (SSL_CTX_use_PrivateKey(c, own.key.get()) != 1 || SSL_CTX_check_private_key(c) != 1) {
    return OpenSslError(StrCat(side, ": private key does not match the certificate"));
  }

  if (SSL_CTX_set1_verify_cert_store(c, roots.store()) != 1) {
    return OpenSslError("SSL_CTX_set1_verify_cert_store");
  }
  SSL_CTX_set_verify(
      c, server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_verify_depth(c, 4);
  SSL_CTX_set_cert_verify_callback(c, VerifyPeerChain, nullptr);

  if (server) {
    SSL_CTX_set_client_hello_cb(c, RequireAlpnExtension, nullptr);
    SSL_CTX_set_alpn_select_cb(c, SelectH2, nullptr);
  } else {
    static constexpr unsigned char kProtos[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(c, kProtos, sizeof(kProtos)) != 0) {  // 0 is success here
      return OpenSslError("SSL_CTX_set_alpn_protos");
    }
  }

  auto* cfg = new CtxConfig{std::move(trust_domain), server, &clock};
  if (SSL_CTX_set_ex_data(c, CtxIndex(), cfg) != 1) {
    delete cfg;
    return OpenSslError("SSL_CTX_set_ex_data");
  }
  return ctx;
}

struct Explained {
  std::string text;
  absl::StatusCode code = absl::StatusCode::kFailedPrecondition;
};

// Words for the errors a peer that does not follow the policy causes.
Explained Explain(unsigned long e) {
  constexpr auto kAuth = absl::StatusCode::kUnauthenticated;
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) return {};
  int reason = ERR_GET_REASON(e);
  if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
    int alert = reason - SSL_AD_REASON_OFFSET;
    std::string_view desc = SSL_alert_desc_string_long(alert);
    if (desc == "unknown") {  // OpenSSL 3.0 has no words for some TLS 1.3 alerts
      const char* r = ERR_reason_error_string(e);
      desc = r != nullptr ? r : "unknown";
    }
    bool about_certs = (alert >= SSL_AD_BAD_CERTIFICATE && alert <= SSL_AD_ACCESS_DENIED &&
                        alert != SSL_AD_ILLEGAL_PARAMETER) ||
                       alert == SSL_AD_CERTIFICATE_REQUIRED || alert == SSL_AD_HANDSHAKE_FAILURE;
    return {StrCat("peer sent fatal alert: ", desc),
            about_certs ? kAuth : absl::StatusCode::kFailedPrecondition};
  }
  switch (reason) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return {"no client certificate", kAuth};
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
    case SSL_R_WRONG_VERSION_NUMBER:
      return {"TLS 1.3 required, the peer offered an older version"};
    case SSL_R_NO_SHARED_CIPHER:
      return {"no shared cipher suite (TLS_AES_128_GCM_SHA256 or TLS_AES_256_GCM_SHA384 required)"};
    case SSL_R_NO_SHARED_GROUPS:
      return {"no shared key exchange group (X25519 or P-256 required)"};
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return {"no application protocol: h2 required"};
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return {"peer certificate verification failed", kAuth};
    default:
      return {};
  }
}

}  // namespace

absl::StatusOr<SpiffeId> Credentials::Identity() const { return SpiffeIdOfCert(leaf()); }

std::chrono::system_clock::time_point Credentials::NotAfter() const {
  struct tm tm {};
  if (leaf() == nullptr || ASN1_TIME_to_tm(X509_get0_notAfter(leaf()), &tm) != 1) {
    return std::chrono::system_clock::time_point::min();
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

absl::StatusOr<Credentials> Credentials::FromPem(std::string_view key_pem,
                                                 std::string_view chain_pem) {
  Credentials creds;
  ZM_ASSIGN_OR_RETURN(creds.key, PrivateKeyFromPem(key_pem, "workload key"));
  ZM_ASSIGN_OR_RETURN(creds.chain, CertsFromPem(chain_pem, "workload certificate chain"));
  if (X509_check_private_key(creds.leaf(), creds.key.get()) != 1) {
    ClearOpenSslErrors();
    return absl::InvalidArgumentError("workload key does not match its certificate");
  }
  return creds;
}

absl::StatusOr<Credentials> Credentials::FromPem(std::string_view key_pem,
                                                 const std::vector<std::string>& chain_pems) {
  std::string joined;
  for (const std::string& pem : chain_pems) {
    joined += pem;
    if (!pem.empty() && pem.back() != '\n') joined += '\n';
  }
  return FromPem(key_pem, joined);
}

absl::StatusOr<RootBundle> RootBundle::FromPem(std::string_view pem, std::string_view source) {
  ZM_ASSIGN_OR_RETURN(std::vector<X509Ptr> certs, CertsFromPem(pem, source));
  X509StorePtr store(X509_STORE_new());
  if (store == nullptr) return OpenSslError("X509_STORE_new");
  for (size_t i = 0; i < certs.size(); ++i) {
    if (X509_check_ca(certs[i].get()) < 1) {
      return absl::InvalidArgumentError(
          StrCat(source, ": certificate ", i + 1, " is not a CA certificate"));
    }
    if (X509_STORE_add_cert(store.get(), certs[i].get()) != 1) {
      return OpenSslError(StrCat(source, ": X509_STORE_add_cert"));
    }
  }
  return RootBundle(std::move(store), certs.size());
}

absl::StatusOr<RootBundle> RootBundle::FromPems(const std::vector<std::string>& pems) {
  std::string joined;
  for (const std::string& pem : pems) {
    joined += pem;
    if (!pem.empty() && pem.back() != '\n') joined += '\n';
  }
  return FromPem(joined);
}

absl::StatusOr<SslCtxPtr> MakeServerContext(const Credentials& own, const RootBundle& roots,
                                            std::string trust_domain, const Clock& clock) {
  return MakeContext(/*server=*/true, own, roots, std::move(trust_domain), clock);
}

absl::StatusOr<SslCtxPtr> MakeClientContext(const Credentials& own, const RootBundle& roots,
                                            std::string trust_domain, const Clock& clock) {
  return MakeContext(/*server=*/false, own, roots, std::move(trust_domain), clock);
}

absl::Status SetExpectedIdentities(SSL* ssl, std::vector<SpiffeId> expected) {
  ConnState* st = MutableStateOf(ssl);
  if (st == nullptr) return OpenSslError("SSL_set_ex_data");
  st->has_expected = true;
  st->expected = std::move(expected);
  return absl::OkStatus();
}

absl::StatusOr<SpiffeId> PeerIdentity(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr) return absl::FailedPreconditionError("no peer certificate");
  long result = SSL_get_verify_result(ssl);
  if (result != X509_V_OK) {
    return absl::UnauthenticatedError(
        StrCat("peer certificate not verified: ", X509_verify_cert_error_string(result)));
  }
  return SpiffeIdOfCert(peer);
}

absl::Status VerifyAlpn(SSL* ssl) {
  const unsigned char* alpn = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &len);
  std::string_view selected(reinterpret_cast<const char*>(alpn), len);
  if (selected == kHboneAlpn) return absl::OkStatus();
  if (selected.empty()) return absl::FailedPreconditionError("peer selected no ALPN, h2 required");
  return absl::FailedPreconditionError(StrCat("peer selected ALPN ", selected, ", h2 required"));
}

std::string FailureReason(const SSL* ssl) {
  const ConnState* st = StateOf(ssl);
  return st != nullptr ? st->failure : std::string();
}

absl::Status HandshakeError(SSL* ssl, int ret) {
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl, ret);  // before the queue is drained
  std::string raw;
  Explained explained;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!raw.empty()) raw += "; ";
    raw += buf;
    if (explained.text.empty()) explained = Explain(e);
  }
  const ConnState* st = StateOf(ssl);
  std::string reason = st != nullptr ? st->failure : std::string();
  absl::StatusCode code = st != nullptr ? st->failure_code : absl::StatusCode::kUnauthenticated;
  if (reason.empty()) {
    reason = explained.text;
    code = explained.code;
    if (reason.empty()) {
      switch (err) {
        case SSL_ERROR_ZERO_RETURN:
          reason = "peer closed the connection during the handshake";
          code = absl::StatusCode::kUnavailable;
          break;
        case SSL_ERROR_SYSCALL:
          reason = raw.empty() && saved_errno != 0
                       ? StrCat("I/O error: ", std::strerror(saved_errno))
                       : "connection closed during the handshake";
          code = absl::StatusCode::kUnavailable;
          break;
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
          reason = "handshake not finished (would block)";
          code = absl::StatusCode::kUnavailable;
          break;
        default:
          reason = "handshake failed";
          code = absl::StatusCode::kFailedPrecondition;
      }
    }
  }
  if (raw.empty()) return absl::Status(code, StrCat("TLS handshake failed: ", reason));
  return absl::Status(code, StrCat("TLS handshake failed: ", reason, " [", raw, "]"));
}

}  // namespace zm::tls

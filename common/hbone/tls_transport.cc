#include "common/hbone/tls_transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <asio/ssl/error.hpp>

#include "common/base/strings.h"
#include "common/tls/hbone_tls.h"
#include "common/hbone/client_session.h"

namespace zm::hbone {
namespace {

constexpr size_t kCipherReadSize = 64 * 1024;
// One SSL_write at most: the session batches up to 256 KiB of frames per write.
constexpr size_t kMaxPlainWrite = 256 * 1024;

}  // namespace

TlsTransport::TlsTransport(asio::ip::tcp::socket socket, tls::SslPtr ssl, Role role)
    : socket_(std::move(socket)), ssl_(std::move(ssl)), cipher_in_(kCipherReadSize) {
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  // An empty read BIO means "need more", not EOF.
  BIO_set_mem_eof_return(rbio_, -1);
  SSL_set_bio(ssl_.get(), rbio_, wbio_);
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
  asio::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

TlsTransport::~TlsTransport() = default;

size_t TlsTransport::PendingCiphertext() const { return BIO_ctrl_pending(wbio_); }

size_t TlsTransport::Decrypt(asio::mutable_buffer buf) {
  auto* p = static_cast<char*>(buf.data());
  size_t n = 0;
  while (n < buf.size() && !eof_ && error_.empty()) {
    size_t got = 0;
    ERR_clear_error();
    int r = SSL_read_ex(ssl_.get(), p + n, buf.size() - n, &got);
    if (r == 1) {
      n += got;
      continue;
    }
    int e = SSL_get_error(ssl_.get(), r);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      eof_ = true;  // close_notify
      break;
    }
    error_ = std::string(tls::HandshakeError(ssl_.get(), r).message());
    break;
  }
  return n;
}

void TlsTransport::AsyncReadSome(asio::mutable_buffer buf, Handler handler) {
  size_t n = Decrypt(buf);
  FlushIfIdle();  // a KeyUpdate answer or an alert the read produced
  if (n > 0 || eof_ || !error_.empty() || buf.size() == 0) {
    asio::error_code ec;
    if (n == 0 && buf.size() > 0) {
      ec = eof_ ? asio::error_code(asio::error::eof)
                : asio::error_code(asio::error::connection_aborted);
    }
    asio::post(socket_.get_executor(),
               [handler = std::move(handler), ec, n] { handler(ec, n); });
    return;
  }
  socket_.async_read_some(
      asio::buffer(cipher_in_.data(), cipher_in_.size()),
      [this, buf, handler = std::move(handler)](const asio::error_code& ec, size_t m) mutable {
        if (ec == asio::error::eof) {
          // TCP EOF without a close_notify: the peer may have cut the stream short.
          handler(asio::ssl::error::stream_truncated, 0);
          return;
        }
        if (ec) {
          handler(ec, 0);
          return;
        }
        BIO_write(rbio_, cipher_in_.data(), static_cast<int>(m));
        AsyncReadSome(buf, std::move(handler));
      });
}

void TlsTransport::AsyncWriteSome(asio::const_buffer buf, Handler handler) {
  const size_t take = std::min(buf.size(), kMaxPlainWrite);
  size_t written = 0;
  if (take > 0) {
    ERR_clear_error();
    // Into a memory BIO a write always completes: every record of `take` is in wbio_ now.
    int r = SSL_write_ex(ssl_.get(), buf.data(), take, &written);
    if (r != 1) {
      ERR_clear_error();  // the session only needs to know the write failed
      asio::post(socket_.get_executor(), [handler = std::move(handler)] {
        handler(asio::error::connection_aborted, 0);
      });
      return;
    }
  }
  Flush([handler = std::move(handler), written](const asio::error_code& ec) {
    handler(ec, ec ? 0 : written);
  });
}

void TlsTransport::Flush(std::function<void(const asio::error_code&)> then) {
  const size_t pending = PendingCiphertext();
  if (pending == 0) {
    asio::post(socket_.get_executor(), [then = std::move(then)] { then({}); });
    return;
  }
  cipher_out_.resize(pending);
  const int got = BIO_read(wbio_, cipher_out_.data(), static_cast<int>(pending));
  cipher_out_.resize(got > 0 ? static_cast<size_t>(got) : 0);
  writing_ = true;
  asio::async_write(socket_, asio::buffer(cipher_out_.data(), cipher_out_.size()),
                    [this, then = std::move(then)](const asio::error_code& ec, size_t) mutable {
                      writing_ = false;
                      if (!ec && PendingCiphertext() > 0) {
                        // Produced meanwhile (by a read): out before the caller goes on.
                        Flush(std::move(then));
                        return;
                      }
                      then(ec);
                    });
}

void TlsTransport::FlushIfIdle() {
  if (writing_ || PendingCiphertext() == 0 || !socket_.is_open()) return;
  Flush([](const asio::error_code&) {});
}

void TlsTransport::Shutdown() {
  asio::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_send, ignored);
}

void TlsTransport::Close() {
  asio::error_code ignored;
  socket_.close(ignored);
}

// The handshake: SSL_do_handshake over the memory BIOs, flushing what it produced and reading
// more ciphertext while it wants to read, under a timer.
struct TlsHandshakeOp : std::enable_shared_from_this<TlsHandshakeOp> {
  TlsHandshakeOp(std::unique_ptr<TlsTransport> t, TlsTransport::HandshakeDone d)
      : transport(std::move(t)), timer(transport->socket().get_executor()), done(std::move(d)) {}

  void Start(std::chrono::milliseconds timeout) {
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->finished) return;
      self->timed_out = true;
      asio::error_code ignored;
      self->transport->socket().cancel(ignored);
    });
    Step();
  }

  void Step() {
    if (finished) return;
    SSL* ssl = transport->ssl();
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
      // The client's Finished (or the server's tickets, none here) may still be buffered.
      transport->Flush([self = shared_from_this()](const asio::error_code& ec) {
        if (ec) {
          self->Fail(StrCat("TLS handshake failed: sending the last flight: ", ec.message()));
          return;
        }
        self->Succeed();
      });
      return;
    }
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ) {
      std::string why(tls::HandshakeError(ssl, r).message());
      // Best effort: let the peer see the alert before the socket closes.
      transport->Flush([self = shared_from_this(), why](const asio::error_code&) {
        self->Fail(why);
      });
      return;
    }
    transport->Flush([self = shared_from_this()](const asio::error_code& ec) {
      if (ec) {
        self->Fail(self->timed_out ? self->TimedOut()
                                   : StrCat("TLS handshake failed: write: ", ec.message()));
        return;
      }
      self->ReadMore();
    });
  }

  void ReadMore() {
    auto& in = transport->cipher_in_;
    transport->socket().async_read_some(
        asio::buffer(in.data(), in.size()),
        [self = shared_from_this()](const asio::error_code& ec, size_t n) {
          if (ec) {
            if (self->timed_out) {
              self->Fail(self->TimedOut());
            } else if (ec == asio::error::eof) {
              self->Fail("TLS handshake failed: the peer closed the connection");
            } else {
              self->Fail(StrCat("TLS handshake failed: read: ", ec.message()));
            }
            return;
          }
          BIO_write(self->transport->rbio_, self->transport->cipher_in_.data(),
                    static_cast<int>(n));
          self->Step();
        });
  }

  std::string TimedOut() const {
    std::string reason = tls::FailureReason(transport->ssl());
    return reason.empty() ? "TLS handshake failed: timed out"
                          : StrCat("TLS handshake failed: timed out (", reason, ")");
  }

  void Succeed() {
    if (finished) return;
    finished = true;
    timer.cancel();
    auto d = std::move(done);
    d(std::move(transport));
  }

  void Fail(std::string why) {
    if (finished) return;
    finished = true;
    timer.cancel();
    transport->Close();
    auto d = std::move(done);
    d(absl::UnavailableError(std::move(why)));
  }

  std::unique_ptr<TlsTransport> transport;
  asio::steady_timer timer;
  TlsTransport::HandshakeDone done;
  bool finished = false;
  bool timed_out = false;
};

void TlsTransport::Handshake(std::unique_ptr<TlsTransport> transport,
                             std::chrono::milliseconds timeout, HandshakeDone done) {
  std::make_shared<TlsHandshakeOp>(std::move(transport), std::move(done))->Start(timeout);
}

void StartTlsClientSession(asio::ip::tcp::socket socket, SSL_CTX* ctx,
                           std::vector<tls::SpiffeId> expected,
                           std::chrono::milliseconds handshake_timeout,
                           SessionOptions session_options, Endpoint peer,
                           std::function<void(ClientSessionOr)> done) {
  tls::SslPtr ssl(SSL_new(ctx));
  if (!ssl) {
    done(absl::InternalError("SSL_new failed"));
    return;
  }
  if (absl::Status st = tls::SetExpectedIdentities(ssl.get(), std::move(expected)); !st.ok()) {
    done(st);
    return;
  }
  TlsTransport::Handshake(
      std::make_unique<TlsTransport>(std::move(socket), std::move(ssl),
                                            TlsTransport::Role::kClient),
      handshake_timeout,
      [session_options, peer, done = std::move(done)](
          absl::StatusOr<std::unique_ptr<TlsTransport>> transport) {
        if (!transport.ok()) {
          done(absl::UnavailableError(
              StrCat("HBONE to ", peer.ToString(), ": ", transport.status().message())));
          return;
        }
        if (absl::Status alpn = tls::VerifyAlpn((*transport)->ssl()); !alpn.ok()) {
          (*transport)->Close();
          done(absl::UnavailableError(StrCat("HBONE to ", peer.ToString(), ": ", alpn.message())));
          return;
        }
        auto session = HboneClientSession::Create(std::move(*transport), session_options);
        session->Start();
        done(std::move(session));
      });
}


}  // namespace zm::hbone

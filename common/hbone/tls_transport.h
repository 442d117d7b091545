#pragma once
// TLS for HBONE sessions, on OpenSSL memory BIOs over an asio TCP socket.
//
// Why not asio::ssl::stream: it encrypts one 16 KiB record per write syscall and reads 17 KiB
// per read syscall, so a bulk transfer costs a syscall (and an event-loop round) per record.
// Here a whole write (the session hands over up to 256 KiB of HTTP/2 frames) becomes its
// records in one buffer and one write; a read takes up to 64 KiB of ciphertext and decrypts
// every record that fits the caller's buffer.
//
// Threading: like every Transport, all calls on the socket's executor; at most one read and
// one write outstanding (the session guarantees it). Post-handshake output caused by a read
// (a KeyUpdate answer, an alert) is flushed after the write in flight, if any.
//
// End of stream: a close_notify reads as asio::error::eof, a TCP EOF without one as
// asio::ssl::error::stream_truncated (as asio::ssl reports them); either closes the session.

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/byte_buffer.h"
#include "common/tls/ossl.h"
#include "common/hbone/session.h"
#include "common/hbone/transport.h"
#include "common/base/ip.h"
#include "common/tls/spiffe.h"

namespace zm::hbone {

class TlsTransport final : public Transport {
 public:
  enum class Role { kClient, kServer };
  using HandshakeDone = std::function<void(absl::StatusOr<std::unique_ptr<TlsTransport>>)>;

  // `ssl` is configured (made from the HBONE context; on a client, expected identities set)
  // and not yet connected; its BIOs are replaced by memory BIOs.
  TlsTransport(asio::ip::tcp::socket socket, tls::SslPtr ssl, Role role);
  ~TlsTransport() override;

  // Runs the handshake of `transport` within `timeout`; `done` runs once, on the socket's
  // executor, with the transport ready for a session, or why not ("TLS handshake failed:
  // ..." in the words of tls::HandshakeError, or "timed out"). A failed handshake sends the
  // alert OpenSSL produced (best effort) and closes the socket.
  static void Handshake(std::unique_ptr<TlsTransport> transport, std::chrono::milliseconds timeout,
                        HandshakeDone done);

  SSL* ssl() const { return ssl_.get(); }
  asio::ip::tcp::socket& socket() { return socket_; }

  asio::any_io_executor executor() override { return socket_.get_executor(); }
  void AsyncReadSome(asio::mutable_buffer buf, Handler handler) override;
  void AsyncWriteSome(asio::const_buffer buf, Handler handler) override;
  void Shutdown() override;
  void Close() override;

 private:
  friend struct TlsHandshakeOp;

  // Decrypts buffered records into `buf`; returns the bytes produced. Sets eof_ or error_.
  size_t Decrypt(asio::mutable_buffer buf);
  // Writes what the write BIO holds; `then` runs after (with the write's error, if any).
  void Flush(std::function<void(const asio::error_code&)> then);
  void FlushIfIdle();
  size_t PendingCiphertext() const;

  asio::ip::tcp::socket socket_;
  tls::SslPtr ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  ByteBuffer cipher_in_;
  ByteBuffer cipher_out_;
  bool writing_ = false;
  bool eof_ = false;
  std::string error_;  // a fatal TLS error seen while reading; reported by the next read
};

class HboneClientSession;
using ClientSessionOr = absl::StatusOr<std::shared_ptr<HboneClientSession>>;

// One new HBONE client connection over a connected socket (ztunnel and the waypoint): the TLS
// client handshake as `ctx`'s identity with secure naming (`expected`) set before it, the ALPN
// check, then a started HTTP/2 client session. `done` runs once, on the socket's executor.
void StartTlsClientSession(asio::ip::tcp::socket socket, SSL_CTX* ctx,
                           std::vector<tls::SpiffeId> expected,
                           std::chrono::milliseconds handshake_timeout,
                           SessionOptions session_options, Endpoint peer,
                           std::function<void(ClientSessionOr)> done);

}  // namespace zm::hbone

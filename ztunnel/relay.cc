#include "ztunnel/relay.h"

#include "ztunnel/sockets.h"

namespace zm::ztunnel {

std::shared_ptr<Relay> Relay::Start(asio::ip::tcp::socket client, asio::ip::tcp::socket server,
                                    std::shared_ptr<TcpSeries> series, Done done) {
  auto relay = std::make_shared<Relay>(std::move(client), std::move(server), std::move(series),
                                       std::move(done));
  relay->Read(0);
  relay->Read(1);
  return relay;
}

void Relay::Cancel(std::string result, std::string detail) {
  if (finished_) return;
  finished_ = true;
  result_.result = std::move(result);
  result_.detail = std::move(detail);
  for (Side side : {kClient, kServer}) {
    if (sock(side).is_open()) SetLingerZero(sock(side).native_handle());
  }
  asio::error_code ignored;
  client_.close(ignored);
  server_.close(ignored);
  if (done_) std::exchange(done_, nullptr)(result_);
}

Relay::Relay(asio::ip::tcp::socket client, asio::ip::tcp::socket server,
             std::shared_ptr<TcpSeries> series, Done done)
    : client_(std::move(client)),
      server_(std::move(server)),
      series_(std::move(series)),
      done_(std::move(done)) {
  // Not zero-filled: always written by a read first.
  buf_[0] = std::make_unique_for_overwrite<char[]>(kBufferSize);
  buf_[1] = std::make_unique_for_overwrite<char[]>(kBufferSize);
}

void Relay::Read(int dir) {
  Side src = dir == 0 ? kClient : kServer;
  sock(src).async_read_some(asio::buffer(buf_[dir].get(), kBufferSize),
                            [self = shared_from_this(), dir](const asio::error_code& ec, size_t n) {
                              self->OnRead(dir, ec, n);
                            });
}

void Relay::OnRead(int dir, const asio::error_code& ec, size_t n) {
  if (finished_) return;
  Side src = dir == 0 ? kClient : kServer;
  Side dst = dir == 0 ? kServer : kClient;
  if (ec == asio::error::eof) {
    eof_[dir] = true;
    asio::error_code ignored;
    sock(dst).shutdown(asio::socket_base::shutdown_send, ignored);
    MaybeFinish();
    return;
  }
  if (ec) {
    Abort(src, ec);
    return;
  }
  asio::async_write(sock(dst), asio::buffer(buf_[dir].get(), n),
                    [self = shared_from_this(), dir](const asio::error_code& ec, size_t n) {
                      self->OnWrite(dir, ec, n);
                    });
}

void Relay::OnWrite(int dir, const asio::error_code& ec, size_t n) {
  if (finished_) return;
  if (dir == 0) {
    result_.bytes_sent += n;
    if (series_) series_->sent_bytes.fetch_add(n, std::memory_order_relaxed);
  } else {
    result_.bytes_received += n;
    if (series_) series_->received_bytes.fetch_add(n, std::memory_order_relaxed);
  }
  if (ec) {
    Abort(dir == 0 ? kServer : kClient, ec);
    return;
  }
  Read(dir);
}

void Relay::Abort(Side failed, const asio::error_code& ec) {
  finished_ = true;
  const bool reset = ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
  result_.result =
      std::string(failed == kClient ? "client" : "upstream") + (reset ? "-reset" : "-error");
  result_.detail = ec.message();
  // The healthy side learns about the failure as a RST, as if it talked to the peer directly.
  Side other = failed == kClient ? kServer : kClient;
  if (sock(other).is_open()) SetLingerZero(sock(other).native_handle());
  asio::error_code ignored;
  client_.close(ignored);
  server_.close(ignored);
  if (done_) std::exchange(done_, nullptr)(result_);
}

void Relay::MaybeFinish() {
  if (!eof_[0] || !eof_[1]) return;
  finished_ = true;
  asio::error_code ignored;
  client_.close(ignored);
  server_.close(ignored);
  if (done_) std::exchange(done_, nullptr)(result_);
}

}  // namespace zm::ztunnel

#pragma once
// The byte stream an HBONE session runs over: plain TCP in tests and on 15006-less paths,
// TLS (asio::ssl::stream) in production. The TLS handshake is the caller's business; the
// session only reads and writes bytes. All operations run on executor().

#include <asio.hpp>
#include <functional>
#include <memory>
#include <utility>

namespace zm::hbone {

class Transport {
 public:
  using Handler = std::function<void(const asio::error_code&, size_t)>;
  virtual ~Transport() = default;

  virtual asio::any_io_executor executor() = 0;
  virtual void AsyncReadSome(asio::mutable_buffer buf, Handler handler) = 0;
  virtual void AsyncWriteSome(asio::const_buffer buf, Handler handler) = 0;
  // Sends a FIN on the underlying TCP socket (no TLS close_notify); errors are ignored.
  virtual void Shutdown() = 0;
  // Closes the underlying socket now; pending operations complete with operation_aborted.
  virtual void Close() = 0;
};

// A Transport over any asio stream with lowest_layer() a tcp::socket:
// asio::ip::tcp::socket or asio::ssl::stream<asio::ip::tcp::socket>.
template <typename Stream>
class StreamTransport final : public Transport {
 public:
  // Sets TCP_NODELAY: HTTP/2 frames (PING acks, WINDOW_UPDATEs, small DATA) must not wait
  // for Nagle.
  explicit StreamTransport(Stream stream) : stream_(std::move(stream)) {
    asio::error_code ignored;
    stream_.lowest_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
  }

  asio::any_io_executor executor() override { return stream_.get_executor(); }
  void AsyncReadSome(asio::mutable_buffer buf, Handler handler) override {
    stream_.async_read_some(buf, std::move(handler));
  }
  void AsyncWriteSome(asio::const_buffer buf, Handler handler) override {
    stream_.async_write_some(buf, std::move(handler));
  }
  void Shutdown() override {
    asio::error_code ignored;
    stream_.lowest_layer().shutdown(asio::socket_base::shutdown_send, ignored);
  }
  void Close() override {
    asio::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }
  Stream& stream() { return stream_; }

 private:
  Stream stream_;
};

template <typename Stream>
std::unique_ptr<Transport> MakeTransport(Stream stream) {
  return std::make_unique<StreamTransport<Stream>>(std::move(stream));
}

}  // namespace zm::hbone

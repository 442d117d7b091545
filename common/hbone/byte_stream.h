#pragma once
// Byte streams: what an HBONE stream relays to, and what the waypoint's HTTP layer reads and
// writes. A TCP socket is one; an in-process pipe connects an HBONE stream to code in the same
// process (the waypoint terminates the CONNECT stream's bytes and parses HTTP from them).
//
// Contract: every call and every completion happens on executor(); completions never run
// inline; at most one read and one write are outstanding; AsyncWriteSome may take fewer bytes
// than offered (the caller writes the rest); AsyncReadSome completes with asio::error::eof
// after the other side shut down its sending direction and everything was read, and with
// asio::error::connection_reset after a Reset.

#include <asio.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace zm::hbone {

class ByteStream {
 public:
  using IoDone = std::function<void(const asio::error_code&, size_t)>;
  virtual ~ByteStream() = default;
  virtual asio::any_io_executor executor() const = 0;
  virtual void AsyncWriteSome(const std::vector<asio::const_buffer>& bufs, IoDone done) = 0;
  virtual void AsyncReadSome(asio::mutable_buffer buf, IoDone done) = 0;
  // No more bytes from this end (FIN / END_STREAM once everything written is out).
  virtual void ShutdownSend() = 0;
  // Abortive end: a TCP peer sees a RST, a pipe's other end connection_reset.
  virtual void Reset() = 0;
  // Orderly end; pending operations complete with operation_aborted.
  virtual void Close() = 0;
};

// A TCP socket as a ByteStream (TCP_NODELAY set).
std::unique_ptr<ByteStream> TcpByteStream(asio::ip::tcp::socket socket);

// An in-process duplex pipe on one executor: bytes written to one end are read from the other.
// Each direction buffers at most `capacity` bytes (back-pressure beyond that).
std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> MakePipe(
    asio::any_io_executor executor, size_t capacity = 256 * 1024);

}  // namespace zm::hbone

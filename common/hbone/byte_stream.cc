#include "common/hbone/byte_stream.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>

namespace zm::hbone {
namespace {

class TcpStream final : public ByteStream {
 public:
  explicit TcpStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
    // Writes are forwarded as they come; Nagle would only add latency.
    asio::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }
  asio::any_io_executor executor() const override {
    return const_cast<asio::ip::tcp::socket&>(socket_).get_executor();
  }
  void AsyncWriteSome(const std::vector<asio::const_buffer>& bufs, IoDone done) override {
    socket_.async_write_some(bufs, std::move(done));
  }
  void AsyncReadSome(asio::mutable_buffer buf, IoDone done) override {
    socket_.async_read_some(buf, std::move(done));
  }
  void ShutdownSend() override {
    asio::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
  }
  void Reset() override {
    if (!socket_.is_open()) return;
    linger l{.l_onoff = 1, .l_linger = 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    asio::error_code ignored;
    socket_.close(ignored);
  }
  void Close() override {
    asio::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::ip::tcp::socket socket_;
};

// One direction of a pipe: what the writer end put in, not yet read by the reader end.
struct Channel {
  std::deque<char> data;
  bool shut = false;     // the writer shut down its sending direction
  bool reset = false;    // either end reset the pipe
  bool closed = false;   // the reader closed: writes fail
  // A parked read (nothing to read yet) and a parked write (no room).
  std::optional<std::pair<asio::mutable_buffer, ByteStream::IoDone>> reader;
  std::optional<std::pair<std::vector<asio::const_buffer>, ByteStream::IoDone>> writer;
};

struct PipeState {
  explicit PipeState(asio::any_io_executor ex, size_t cap) : executor(std::move(ex)), capacity(cap) {}
  asio::any_io_executor executor;
  size_t capacity;
  Channel dir[2];  // dir[i]: written by end i, read by end 1-i
};

class PipeEnd final : public ByteStream {
 public:
  PipeEnd(std::shared_ptr<PipeState> state, int side) : s_(std::move(state)), side_(side) {}
  ~PipeEnd() override { Close(); }

  asio::any_io_executor executor() const override { return s_->executor; }

  void AsyncWriteSome(const std::vector<asio::const_buffer>& bufs, IoDone done) override {
    Channel& out = s_->dir[side_];
    if (out.reset || out.closed || out.shut) {
      Complete(std::move(done), out.reset ? asio::error::connection_reset
                                          : asio::error::broken_pipe, 0);
      return;
    }
    size_t n = Put(out, bufs);
    if (n == 0 && TotalSize(bufs) > 0) {
      out.writer.emplace(bufs, std::move(done));  // wait for room
      return;
    }
    Complete(std::move(done), {}, n);
    WakeReader(out);
  }

  void AsyncReadSome(asio::mutable_buffer buf, IoDone done) override {
    Channel& in = s_->dir[1 - side_];
    if (in.reset) {
      Complete(std::move(done), asio::error::connection_reset, 0);
      return;
    }
    if (in.data.empty()) {
      if (in.shut) {
        Complete(std::move(done), asio::error::eof, 0);
      } else {
        in.reader.emplace(buf, std::move(done));
      }
      return;
    }
    size_t n = Take(in, buf);
    Complete(std::move(done), {}, n);
    WakeWriter(in);
  }

  void ShutdownSend() override {
    Channel& out = s_->dir[side_];
    if (out.shut) return;
    out.shut = true;
    WakeReader(out);
  }

  void Reset() override {
    for (Channel& c : s_->dir) {
      c.reset = true;
      c.data.clear();
      if (c.reader) {
        auto [buf, done] = std::move(*c.reader);
        c.reader.reset();
        Complete(std::move(done), asio::error::connection_reset, 0);
      }
      if (c.writer) {
        auto [bufs, done] = std::move(*c.writer);
        c.writer.reset();
        Complete(std::move(done), asio::error::connection_reset, 0);
      }
    }
  }

  void Close() override {
    if (closed_) return;
    closed_ = true;
    // This end reads no more: the other end's writes fail; it still reads what we wrote,
    // then EOF.
    Channel& in = s_->dir[1 - side_];
    in.closed = true;
    in.data.clear();
    if (in.writer) {
      auto [bufs, done] = std::move(*in.writer);
      in.writer.reset();
      Complete(std::move(done), asio::error::broken_pipe, 0);
    }
    if (in.reader) {  // our own parked read
      auto [buf, done] = std::move(*in.reader);
      in.reader.reset();
      Complete(std::move(done), asio::error::operation_aborted, 0);
    }
    Channel& out = s_->dir[side_];
    if (out.writer) {  // our own parked write
      auto [bufs, done] = std::move(*out.writer);
      out.writer.reset();
      Complete(std::move(done), asio::error::operation_aborted, 0);
    }
    ShutdownSend();
  }

 private:
  static size_t TotalSize(const std::vector<asio::const_buffer>& bufs) {
    size_t n = 0;
    for (const auto& b : bufs) n += b.size();
    return n;
  }

  size_t Put(Channel& c, const std::vector<asio::const_buffer>& bufs) {
    size_t room = s_->capacity > c.data.size() ? s_->capacity - c.data.size() : 0;
    size_t put = 0;
    for (const auto& b : bufs) {
      if (room == 0) break;
      size_t n = std::min(room, b.size());
      const char* p = static_cast<const char*>(b.data());
      c.data.insert(c.data.end(), p, p + n);
      room -= n;
      put += n;
    }
    return put;
  }

  static size_t Take(Channel& c, asio::mutable_buffer buf) {
    size_t n = std::min(buf.size(), c.data.size());
    std::copy_n(c.data.begin(), n, static_cast<char*>(buf.data()));
    c.data.erase(c.data.begin(), c.data.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }

  // The reader of `c` (the other end) may go on.
  void WakeReader(Channel& c) {
    if (!c.reader) return;
    if (c.data.empty() && !c.shut) return;
    auto [buf, done] = std::move(*c.reader);
    c.reader.reset();
    if (c.data.empty()) {
      Complete(std::move(done), asio::error::eof, 0);
      return;
    }
    size_t n = Take(c, buf);
    Complete(std::move(done), {}, n);
    WakeWriter(c);
  }

  // The writer of `c` (parked for room) may go on.
  void WakeWriter(Channel& c) {
    if (!c.writer || c.data.size() >= s_->capacity) return;
    auto [bufs, done] = std::move(*c.writer);
    c.writer.reset();
    size_t n = Put(c, bufs);
    Complete(std::move(done), {}, n);
    WakeReader(c);
  }

  void Complete(IoDone done, asio::error_code ec, size_t n) {
    asio::post(s_->executor, [done = std::move(done), ec, n] { done(ec, n); });
  }

  std::shared_ptr<PipeState> s_;
  int side_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<ByteStream> TcpByteStream(asio::ip::tcp::socket socket) {
  return std::make_unique<TcpStream>(std::move(socket));
}

std::pair<std::unique_ptr<ByteStream>, std::unique_ptr<ByteStream>> MakePipe(
    asio::any_io_executor executor, size_t capacity) {
  auto state = std::make_shared<PipeState>(std::move(executor), capacity);
  return {std::make_unique<PipeEnd>(state, 0), std::make_unique<PipeEnd>(state, 1)};
}

}  // namespace zm::hbone

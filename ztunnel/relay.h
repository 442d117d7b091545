#pragma once
// Byte relay between two connected TCP sockets on one worker's io_context (DESIGN §5):
// 64 KiB per direction, half-close carried (EOF on one side -> shutdown(SHUT_WR) on the
// other; done when both directions are), resets carried (an error on one side -> the other
// is closed with SO_LINGER 0 so it sees a RST). Everything runs on the sockets' executor.

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "ztunnel/metrics.h"

namespace zm::ztunnel {

struct RelayResult {
  uint64_t bytes_sent = 0;      // client -> server
  uint64_t bytes_received = 0;  // server -> client
  // "ok", or what broke it: "client-reset", "upstream-reset", "client-error",
  // "upstream-error".
  std::string result = "ok";
  std::string detail;  // the error message when not ok
};

class Relay : public std::enable_shared_from_this<Relay> {
 public:
  static constexpr size_t kBufferSize = 64 * 1024;
  using Done = std::function<void(const RelayResult&)>;

  // `series` may be null (no metrics). `done` runs once, on the sockets' executor. The result
  // is kept alive by its own pending operations; hold it weakly to Cancel it.
  static std::shared_ptr<Relay> Start(asio::ip::tcp::socket client, asio::ip::tcp::socket server,
                                      std::shared_ptr<TcpSeries> series, Done done);

  // Ends the relay now, from the sockets' executor: both sides get a RST and `done` reports
  // `result` (e.g. "policy-revoked"). Nothing happens if it already finished.
  void Cancel(std::string result, std::string detail);

  Relay(asio::ip::tcp::socket client, asio::ip::tcp::socket server,
        std::shared_ptr<TcpSeries> series, Done done);

 private:
  enum Side { kClient = 0, kServer = 1 };
  void Read(int dir);
  void OnRead(int dir, const asio::error_code& ec, size_t n);
  void OnWrite(int dir, const asio::error_code& ec, size_t n);
  void Abort(Side failed, const asio::error_code& ec);
  void MaybeFinish();
  asio::ip::tcp::socket& sock(Side s) { return s == kClient ? client_ : server_; }

  asio::ip::tcp::socket client_;
  asio::ip::tcp::socket server_;
  std::shared_ptr<TcpSeries> series_;
  Done done_;
  std::unique_ptr<char[]> buf_[2];
  bool eof_[2] = {false, false};  // dir 0: client -> server, dir 1: server -> client
  bool finished_ = false;
  RelayResult result_;
};

}  // namespace zm::ztunnel

#pragma once
// The HTTP/2 layer of HBONE (DESIGN §5): an nghttp2 session over a Transport, one CONNECT
// stream per proxied TCP connection, and the relay between a stream and a TCP socket.
//
// Threading: a session and all its streams live on the transport's executor (one worker's
// io_context). Public methods may be called from any thread; they dispatch to that executor.
// Callbacks (OnConnect, OpenCallback, Done, OnClosed) run on it.
//
// Relay semantics (same as ztunnel/relay.h): END_STREAM from the peer -> shutdown(SHUT_WR)
// on the socket once everything before it is written; socket EOF -> DATA with END_STREAM;
// socket error -> RST_STREAM(CONNECT_ERROR) and the socket closed; RST_STREAM from the peer
// (or the session dying) -> the socket closed with SO_LINGER 0, so its peer sees a RST.
// Flow control is manual: received DATA is consumed (WINDOW_UPDATE) only once the socket
// accepted it, and the socket is read only when the previous chunk went into DATA frames,
// so a slow side back-pressures the other and buffering is bounded by the windows.

#include <nghttp2/nghttp2.h>

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/base/byte_buffer.h"
#include "common/hbone/byte_stream.h"
#include "absl/status/statusor.h"
#include "common/hbone/transport.h"

namespace zm::hbone {

struct SessionOptions {
  uint32_t stream_window = 4 << 20;       // SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t connection_window = 16 << 20;  // always larger than stream_window
  uint32_t max_frame_size = 1 << 20;      // SETTINGS_MAX_FRAME_SIZE
  uint32_t max_concurrent_streams = 100;
  std::chrono::milliseconds ping_interval{10'000};
  std::chrono::milliseconds ping_timeout{20'000};
  size_t socket_read_size = 64 * 1024;  // per stream, socket -> stream
};

struct Header {
  std::string name;  // lower case
  std::string value;
  bool operator==(const Header&) const = default;
};

// The outcome of one stream's relay, for the access log.
struct StreamResult {
  uint64_t bytes_to_socket = 0;  // peer -> local socket
  uint64_t bytes_to_stream = 0;  // local socket -> peer
  // "ok", or what ended it: "peer-reset" (RST_STREAM from the peer), "socket-reset",
  // "socket-error", "local-reset" (Reset() called), "session-closed".
  std::string result = "ok";
  std::string detail;
};

class SessionBase;

// Closes `socket` so that its peer sees a RST (SO_LINGER 0), as ztunnel/relay.cc does.
void ResetSocket(asio::ip::tcp::socket& socket);


// One CONNECT stream and its relay to a local TCP socket.
class HboneStream : public std::enable_shared_from_this<HboneStream> {
 public:
  using Done = std::function<void(const StreamResult&)>;

  // Starts relaying between the stream and `socket` (same io_context as the session).
  // `done` runs once when both directions are finished or something was reset. If the
  // stream is already gone, the socket is reset and `done` reports why.
  void Start(asio::ip::tcp::socket socket, Done done);
  // The same with any peer (the waypoint's in-process HTTP layer).
  void Start(std::unique_ptr<ByteStream> peer, Done done);
  // RST_STREAM(CANCEL) and, if attached, the socket closed with a RST.
  void Reset();
  int32_t id() const { return id_; }

  HboneStream(std::weak_ptr<SessionBase> session, size_t read_size);

 private:
  friend class SessionBase;
  friend class HboneServerSession;
  friend class HboneClientSession;
  friend struct Nghttp2Glue;

  std::weak_ptr<SessionBase> session_;
  int32_t id_ = -1;
  std::unique_ptr<ByteStream> socket_;  // the relay's other end
  Done done_;
  StreamResult result_;
  bool finished_ = false;  // relay over (done_ called or to be called), removed from the map
  bool h2_closed_ = false;
  bool rst_after_headers_ = false;  // RST_STREAM(NO_ERROR) once the final HEADERS went out

  // peer -> socket: DATA payloads not yet written (and so not yet consumed).
  std::deque<std::vector<char>> in_;
  size_t in_front_off_ = 0;
  size_t in_bytes_ = 0;
  bool writing_ = false;
  bool peer_eof_ = false;     // END_STREAM received
  bool socket_shut_ = false;  // shutdown(SHUT_WR) done after peer_eof_

  // socket -> peer: one chunk read from the socket, handed to nghttp2 DATA frames.
  ByteBuffer out_;
  size_t out_off_ = 0, out_len_ = 0;
  bool reading_ = false;
  bool socket_eof_ = false;
  bool eof_sent_ = false;  // DATA with END_STREAM handed to nghttp2
  bool deferred_ = false;  // the data provider returned NGHTTP2_ERR_DEFERRED

  // Request or response headers as received.
  std::vector<Header> headers_;
  bool headers_bad_ = false;
  std::string headers_error_;
  size_t headers_size_ = 0;
  // Client side: the response is awaited.
  std::function<void(absl::StatusOr<int>, std::shared_ptr<HboneStream>)> open_cb_;
  int status_ = 0;
};

struct SessionStats {
  uint64_t streams_opened = 0;
  uint64_t pings_sent = 0;
  uint64_t pings_acked = 0;
  size_t active_streams = 0;
  size_t buffered_bytes = 0;  // peer -> socket bytes held, all streams
};

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase();
  SessionBase(const SessionBase&) = delete;
  SessionBase& operator=(const SessionBase&) = delete;

  // Sends SETTINGS, starts reading and the PING timer. Call once.
  void Start();
  // Closes the session now: streams are reset, OnClosed runs.
  void Close(std::string reason);
  // A graceful end (ztunnel's SIGTERM drain): GOAWAY naming the last stream processed, so the
  // peer opens no new stream on this session; open streams finish, then it closes by itself.
  // Call on the executor.
  void GoAway();
  // Runs once when the session is closed (by either side, error or timeout).
  void SetOnClosed(std::function<void(const std::string& reason)> cb);

  asio::any_io_executor executor() const { return executor_; }
  uint64_t id() const { return id_; }
  // These read state owned by the session's executor: call them there.
  bool closed() const { return closed_; }
  bool goaway_received() const { return goaway_received_; }
  size_t active_streams() const { return streams_.size(); }
  SessionStats stats() const;

 protected:
  SessionBase(std::unique_ptr<Transport> transport, SessionOptions options, bool server);

  // Hooks for the server / client.
  virtual void OnHeadersComplete(const std::shared_ptr<HboneStream>& st,
                                 const nghttp2_frame* f) = 0;
  virtual void OnStreamGone(const std::shared_ptr<HboneStream>& st, const std::string& why) = 0;

  void SendPending();
  void Attach(const std::shared_ptr<HboneStream>& st, std::unique_ptr<ByteStream> peer,
              HboneStream::Done done);
  void ResetStream(const std::shared_ptr<HboneStream>& st, uint32_t h2_error, std::string result,
                   std::string detail);
  // Ends the relay of `st` (no RST sent): buffered bytes are released, `done` posted.
  void Finish(const std::shared_ptr<HboneStream>& st);
  std::shared_ptr<HboneStream> Find(int32_t id) const;
  nghttp2_data_provider DataProvider(HboneStream* st);
  std::shared_ptr<HboneStream> NewStream();

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::shared_ptr<HboneStream>> streams_;
  SessionOptions options_;
  uint64_t id_;
  SessionStats counters_;

 private:
  friend struct Nghttp2Glue;
  friend class HboneStream;

  void Read();
  void WriteOut(size_t off);
  void ArmPing();
  void StartSocketWrite(const std::shared_ptr<HboneStream>& st);
  void StartSocketRead(const std::shared_ptr<HboneStream>& st);
  void MaybeFinish(const std::shared_ptr<HboneStream>& st);

  std::unique_ptr<Transport> transport_;
  asio::any_io_executor executor_;
  bool server_;
  bool started_ = false;
  bool closed_ = false;
  bool writing_ = false;
  bool goaway_received_ = false;
  bool in_nghttp2_ = false;  // inside nghttp2_session_mem_recv/mem_send
  std::vector<char> read_buf_;
  std::vector<uint8_t> out_;
  asio::steady_timer ping_timer_;
  asio::steady_timer ping_timeout_timer_;
  bool ping_outstanding_ = false;
  uint64_t ping_generation_ = 0;
  std::function<void(const std::string&)> on_closed_;
};

}  // namespace zm::hbone

// The HTTP/2 (prior knowledge) engine: an nghttp2 server session on the downstream byte stream,
// one nghttp2 client session (h2c prior knowledge) on the upstream one, request streams mapped
// 1:1. Flow control is manual on both sessions: DATA is consumed (WINDOW_UPDATE) only once it
// went into a frame on the other session, so a stream buffers at most its window.

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>

#include "common/base/log.h"
#include "waypoint/http/internal.h"

namespace zm::waypoint::internal {
namespace {

constexpr size_t kReadSize = 64 * 1024;
constexpr size_t kWriteBatch = 128 * 1024;

struct SessionDeleter {
  void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
};
struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};
struct OptionDeleter {
  void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;

class H2Conn;
struct Io;

struct H2Stream {
  enum class Phase { kHeaders, kFilter, kOpen, kForward, kLocal };
  int32_t down_id = 0;
  int32_t up_id = -1;
  std::weak_ptr<Io> up;
  Phase phase = Phase::kHeaders;
  Clock::time_point start;

  RequestHead head;
  size_t header_bytes = 0;
  bool too_big = false;
  bool bad = false;
  std::string bad_why;
  bool in_trailers = false;
  std::vector<HttpHeader> req_trailers;
  bool req_end = false;  // END_STREAM from the client
  ByteQueue req_body;
  bool up_deferred = false;
  bool expect_continue = false;

  int status = 0;
  bool resp_started = false;  // response HEADERS submitted downstream
  bool resp_end = false;
  bool up_closed = false;
  std::vector<HttpHeader> resp_headers;
  std::vector<HttpHeader> resp_trailers;
  bool resp_in_trailers = false;
  ByteQueue resp_body;
  bool down_deferred = false;

  bool local = false;
  std::string local_body;
  size_t local_off = 0;
  std::string detail;
  uint64_t req_bytes = 0, resp_bytes = 0;
};

// One side: a byte stream and the nghttp2 session on it.
struct Io {
  H2Conn* conn = nullptr;
  bool server = false;
  std::unique_ptr<hbone::ByteStream> stream;
  SessionPtr session;
  ByteBuffer rbuf;
  ByteBuffer out;
  size_t out_len = 0, out_off = 0;
  bool reading = false, writing = false;
  bool dead = false;                                     // closed or failed: no more I/O
  bool goaway = false;                                   // no new streams on it
  std::map<int32_t, std::shared_ptr<H2Stream>> streams;  // client side: by upstream id
};

void LowerInPlace(std::string& s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
}

nghttp2_nv Nv(std::string_view name, std::string_view value) {
  return {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
          const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

bool ValidHeaderName(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (!IsTokenChar(c) || (c >= 'A' && c <= 'Z')) return false;
  }
  return true;
}

class H2Conn : public std::enable_shared_from_this<H2Conn> {
 public:
  explicit H2Conn(ServeArgs args)
      : a_(std::move(args)), executor_(a_.down->executor()), deadlines_(executor_) {}

  void Start(ByteBuffer initial, size_t initial_len) {
    down_ = std::make_shared<Io>();
    down_->conn = this;
    down_->server = true;
    down_->stream = std::move(a_.down);
    down_->session = NewSession(true);
    down_->rbuf = std::move(initial);
    if (down_->rbuf.size() < kReadSize) down_->rbuf.resize(kReadSize);
    SubmitSettings(*down_);
    last_activity_ = Clock::now();
    ArmTimer();
    if (initial_len > 0) Receive(down_, initial_len);
    Drive();
  }

 private:
  // ---- sessions ---------------------------------------------------------------------------

  SessionPtr NewSession(bool server) {
    nghttp2_session_callbacks* raw_cbs = nullptr;
    if (nghttp2_session_callbacks_new(&raw_cbs) != 0) std::abort();
    std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> cbs(raw_cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cbs.get(), OnHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), OnFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), OnDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), OnStreamClose);
    nghttp2_option* raw_opt = nullptr;
    if (nghttp2_option_new(&raw_opt) != 0) std::abort();
    std::unique_ptr<nghttp2_option, OptionDeleter> opt(raw_opt);
    nghttp2_option_set_no_auto_window_update(opt.get(), 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt.get(), a_.options.h2_max_concurrent_streams);
    nghttp2_session* s = nullptr;
    int rv = server ? nghttp2_session_server_new2(&s, cbs.get(), nullptr, opt.get())
                    : nghttp2_session_client_new2(&s, cbs.get(), nullptr, opt.get());
    if (rv != 0) std::abort();  // out of memory only
    return SessionPtr(s);
  }

  void SubmitSettings(Io& io) {
    nghttp2_session_set_user_data(io.session.get(), &io);
    std::vector<nghttp2_settings_entry> settings = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, a_.options.h2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, a_.options.h2_stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         static_cast<uint32_t>(a_.options.max_request_headers_bytes)},
    };
    if (!io.server) settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
    nghttp2_submit_settings(io.session.get(), NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    nghttp2_session_set_local_window_size(io.session.get(), NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(a_.options.h2_connection_window));
  }

  // ---- the loop ---------------------------------------------------------------------------

  void Drive() {
    if (driving_ || in_nghttp2_) {
      again_ = true;
      return;
    }
    driving_ = true;
    do {
      again_ = false;
      if (finished_) break;
      Flush(down_);
      for (size_t i = 0; i < ups_.size(); ++i) Flush(ups_[i]);
      if (down_->dead || (down_eof_ && streams_.empty() && !down_->writing)) {
        Finish("");
        break;
      }
      // Upstream sessions that ended and have nothing left go.
      std::erase_if(ups_, [&](const std::shared_ptr<Io>& u) {
        if (!u->dead || !u->streams.empty()) return false;
        if (cur_up_ == u) cur_up_.reset();
        return true;
      });
      StartRead(down_);
      for (auto& u : ups_) StartRead(u);
    } while (again_);
    driving_ = false;
  }

  void StartRead(const std::shared_ptr<Io>& io) {
    if (io->reading || io->dead || (io == down_ && down_eof_)) return;
    io->reading = true;
    io->stream->AsyncReadSome(
        asio::buffer(io->rbuf.data(), io->rbuf.size()),
        [self = shared_from_this(), io](const asio::error_code& ec, size_t n) {
          io->reading = false;
          if (self->finished_ || io->dead) return;
          self->last_activity_ = Clock::now();
          if (ec == asio::error::eof && io == self->down_) {
            self->OnDownstreamEof();
          } else if (ec) {
            self->IoFailed(io, ec == asio::error::eof ? "peer closed" : ec.message());
          } else {
            self->Receive(io, n);
          }
          self->Drive();
        });
  }

  // The client sends no more: streams whose request is complete still get their responses;
  // the others cannot complete and are reset.
  void OnDownstreamEof() {
    down_eof_ = true;
    for (auto& [id, st] : streams_) {
      if (st->req_end) continue;
      if (st->detail.empty()) st->detail = "downstream-closed";
      nghttp2_submit_rst_stream(down_->session.get(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
  }

  void Receive(const std::shared_ptr<Io>& io, size_t n) {
    in_nghttp2_ = true;
    ssize_t rv = nghttp2_session_mem_recv(io->session.get(),
                                          reinterpret_cast<const uint8_t*>(io->rbuf.data()), n);
    in_nghttp2_ = false;
    if (rv < 0) {
      Log("http").debug("conn={} {} HTTP/2 error: {}", a_.conn_id,
                        io->server ? "downstream" : "upstream",
                        nghttp2_strerror(static_cast<int>(rv)));
      // GOAWAY(PROTOCOL_ERROR) is flushed, then the session ends.
      nghttp2_session_terminate_session(io->session.get(), NGHTTP2_PROTOCOL_ERROR);
      io->goaway = true;
    }
  }

  void Flush(const std::shared_ptr<Io>& io) {
    if (io->dead || io->writing) return;
    io->out_len = io->out_off = 0;
    while (io->out_len < kWriteBatch) {
      const uint8_t* data = nullptr;
      in_nghttp2_ = true;
      ssize_t n = nghttp2_session_mem_send(io->session.get(), &data);
      in_nghttp2_ = false;
      if (n < 0) {
        IoFailed(io, nghttp2_strerror(static_cast<int>(n)));
        return;
      }
      if (n == 0) break;
      if (io->out.size() < io->out_len + static_cast<size_t>(n)) {
        io->out.resize(io->out_len + static_cast<size_t>(n));
      }
      std::memcpy(io->out.data() + io->out_len, data, static_cast<size_t>(n));
      io->out_len += static_cast<size_t>(n);
    }
    if (io->out_len == 0) {
      if (!nghttp2_session_want_read(io->session.get()) &&
          !nghttp2_session_want_write(io->session.get())) {
        IoFailed(io, "session ended");
      }
      return;
    }
    io->writing = true;
    WriteOut(io);
  }

  void WriteOut(const std::shared_ptr<Io>& io) {
    std::vector<asio::const_buffer> bufs{
        asio::const_buffer(io->out.data() + io->out_off, io->out_len - io->out_off)};
    io->stream->AsyncWriteSome(
        bufs, [self = shared_from_this(), io](const asio::error_code& ec, size_t n) {
          if (self->finished_ || io->dead) {
            io->writing = false;
            return;
          }
          self->last_activity_ = Clock::now();
          if (ec) {
            io->writing = false;
            self->IoFailed(io, ec.message());
            self->Drive();
            return;
          }
          io->out_off += n;
          if (io->out_off < io->out_len) {
            self->WriteOut(io);
            return;
          }
          io->writing = false;
          self->Drive();
        });
  }

  // The session on `io` can do no more I/O.
  void IoFailed(const std::shared_ptr<Io>& io, std::string_view why) {
    if (io->dead) return;
    io->dead = true;
    again_ = true;  // what this changes (local responses, resets) is flushed by Drive
    io->stream->Close();
    if (io == down_) {
      Log("http").debug("conn={} downstream HTTP/2 ended: {}", a_.conn_id, why);
      return;  // Drive() finishes the connection
    }
    if (cur_up_ == io) cur_up_.reset();
    auto streams = std::move(io->streams);
    io->streams.clear();
    for (auto& [id, st] : streams) {
      st->up_closed = true;
      UpstreamStreamEnded(st, NGHTTP2_INTERNAL_ERROR, StrCat("upstream-reset: ", why));
    }
  }

  void Finish(std::string_view why) {
    if (finished_) return;
    finished_ = true;
    if (!why.empty()) Log("http").debug("conn={} closed: {}", a_.conn_id, why);
    deadlines_.Cancel();
    for (auto& [id, st] : streams_) {
      if (st->detail.empty()) st->detail = "downstream-closed";
      Report(*st);
    }
    streams_.clear();
    for (auto& u : ups_) {
      u->dead = true;
      u->stream->Close();
      u->streams.clear();
    }
    if (!down_->dead) {
      down_->dead = true;
      down_->stream->Close();
    }
  }

  // ---- requests ---------------------------------------------------------------------------

  std::shared_ptr<H2Stream> FindDown(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  }

  void OnRequestHead(const std::shared_ptr<H2Stream>& st) {
    RequestHead& h = st->head;
    if (st->too_big) return SendLocal(st, 431, ReasonPhrase(431), {}, "bad-request: headers");
    if (st->bad) return SendLocal(st, 400, ReasonPhrase(400), {}, "bad-request: " + st->bad_why);
    if (!IsValidMethod(h.method)) {
      return SendLocal(st, 400, ReasonPhrase(400), {}, "bad-request: method");
    }
    if (h.method == "CONNECT") {
      return SendLocal(st, 501, ReasonPhrase(501), {}, "bad-request: CONNECT inside the tunnel");
    }
    if (h.path.empty()) return SendLocal(st, 400, ReasonPhrase(400), {}, "bad-request: :path");
    if (h.authority.empty()) {
      if (auto host = h.Find("host")) h.authority.assign(*host);
    }
    h.Remove("host");
    if (auto e = h.Find("expect"); e && EqualsIgnoreCase(*e, "100-continue")) {
      st->expect_continue = !st->req_end;
      h.Remove("expect");
    }
    StripHopByHop(h.headers);
    st->phase = H2Stream::Phase::kFilter;
    // The closure keeps the stream (and so `h`, which the filter may still edit while an
    // external authorizer answers) alive; a stream that ended meanwhile is no longer in
    // streams_ and the decision is dropped.
    a_.filter->Decide(h, [self = shared_from_this(), st](Decision d) {
      if (self->finished_ || self->FindDown(st->down_id) != st) return;
      self->OnDecision(st, std::move(d));
      self->Drive();
    });
  }

  void OnDecision(const std::shared_ptr<H2Stream>& st, Decision d) {
    if (st->phase != H2Stream::Phase::kFilter) return;
    if (!d.forward) {
      return SendLocal(st, d.status > 0 ? d.status : 403, d.body, d.response_headers, "filter");
    }
    for (HttpHeader& h : st->head.headers) {
      LowerInPlace(h.name);
      if (!ValidHeaderName(h.name) || !IsValidFieldValue(h.value)) {
        return SendLocal(st, 500, "invalid request after filter", {}, "filter: invalid header");
      }
    }
    if (st->head.path.empty() || !IsValidFieldValue(st->head.path)) {
      return SendLocal(st, 500, "invalid request after filter", {}, "filter: invalid path");
    }
    if (st->expect_continue) {
      std::vector<nghttp2_nv> nv{Nv(":status", "100")};
      nghttp2_submit_headers(down_->session.get(), NGHTTP2_FLAG_NONE, st->down_id, nullptr,
                             nv.data(), nv.size(), nullptr);
    }
    st->phase = H2Stream::Phase::kOpen;
    if (cur_up_ && !cur_up_->dead && !cur_up_->goaway) {
      SubmitUpstream(st);
      return;
    }
    waiting_.push_back(st);
    if (opening_) return;
    opening_ = true;
    a_.open([self = shared_from_this()](absl::StatusOr<std::unique_ptr<hbone::ByteStream>> s) {
      self->OnUpstream(std::move(s));
      self->Drive();
    });
  }

  void OnUpstream(absl::StatusOr<std::unique_ptr<hbone::ByteStream>> s) {
    opening_ = false;
    if (finished_) {
      if (s.ok() && *s) (*s)->Close();
      return;
    }
    auto waiting = std::move(waiting_);
    waiting_.clear();
    if (!s.ok() || !*s) {
      std::string why = StrCat("upstream-open: ", s.ok() ? "null stream" : s.status().ToString());
      for (auto& st : waiting) {
        if (st->phase == H2Stream::Phase::kOpen) {
          SendLocal(st, 503, "upstream connect error", {}, why);
        }
      }
      return;
    }
    auto io = std::make_shared<Io>();
    io->conn = this;
    io->stream = std::move(*s);
    io->session = NewSession(false);
    io->rbuf.resize(kReadSize);
    SubmitSettings(*io);
    ups_.push_back(io);
    cur_up_ = io;
    for (auto& st : waiting) {
      if (st->phase == H2Stream::Phase::kOpen) SubmitUpstream(st);
    }
  }

  void SubmitUpstream(const std::shared_ptr<H2Stream>& st) {
    const std::shared_ptr<Io>& io = cur_up_;
    RequestHead& h = st->head;
    nv_.clear();
    nv_.push_back(Nv(":method", h.method));
    nv_.push_back(Nv(":scheme", h.scheme));
    nv_.push_back(Nv(":authority", h.authority));
    nv_.push_back(Nv(":path", h.path));
    for (const HttpHeader& hh : h.headers) nv_.push_back(Nv(hh.name, hh.value));
    nghttp2_data_provider provider{};
    provider.source.ptr = st.get();
    provider.read_callback = ReadRequestBody;
    const bool body = !(st->req_end && st->req_body.empty() && st->req_trailers.empty());
    int32_t id = nghttp2_submit_request(io->session.get(), nullptr, nv_.data(), nv_.size(),
                                        body ? &provider : nullptr, nullptr);
    if (id < 0) {
      SendLocal(st, 503, "upstream connect error", {},
                StrCat("upstream-submit: ", nghttp2_strerror(id)));
      return;
    }
    st->up_id = id;
    st->up = io;
    st->phase = H2Stream::Phase::kForward;
    io->streams[id] = st;
  }

  void SendLocal(const std::shared_ptr<H2Stream>& st, int status, std::string_view body,
                 const std::vector<HttpHeader>& headers, std::string detail) {
    again_ = true;
    st->phase = H2Stream::Phase::kLocal;
    st->local = true;
    st->status = status;
    st->detail = std::move(detail);
    st->local_body.assign(body);
    st->local_off = 0;
    st->resp_started = true;
    // Whatever the client still sends is dropped (and its window given back).
    if (!st->req_body.empty()) {
      nghttp2_session_consume(down_->session.get(), st->down_id, st->req_body.size());
      st->req_body.Clear();
    }
    std::string status_str = std::to_string(status);
    std::string length = std::to_string(body.size());
    std::vector<HttpHeader> extra;
    for (const HttpHeader& h : headers) {
      HttpHeader copy = h;
      LowerInPlace(copy.name);
      if (!ValidHeaderName(copy.name) || !IsValidFieldValue(copy.value) || IsHopByHop(copy.name) ||
          copy.name == "content-length" || copy.name == "content-type") {
        continue;
      }
      extra.push_back(std::move(copy));
    }
    std::vector<nghttp2_nv> nv{Nv(":status", status_str), Nv("content-type", "text/plain"),
                               Nv("content-length", length)};
    for (const HttpHeader& h : extra) nv.push_back(Nv(h.name, h.value));
    nghttp2_data_provider provider{};
    provider.source.ptr = st.get();
    provider.read_callback = ReadLocalBody;
    int rv = nghttp2_submit_response(down_->session.get(), st->down_id, nv.data(), nv.size(),
                                     body.empty() ? nullptr : &provider);
    if (rv != 0) {
      nghttp2_submit_rst_stream(down_->session.get(), NGHTTP2_FLAG_NONE, st->down_id,
                                NGHTTP2_INTERNAL_ERROR);
    }
    // An upstream stream that was still going is cancelled.
    if (auto io = st->up.lock(); io && !st->up_closed && st->up_id > 0 && !io->dead) {
      nghttp2_submit_rst_stream(io->session.get(), NGHTTP2_FLAG_NONE, st->up_id, NGHTTP2_CANCEL);
    }
  }

  // The upstream stream of `st` closed (`error` != NO_ERROR, or the response was cut).
  void UpstreamStreamEnded(const std::shared_ptr<H2Stream>& st, uint32_t error, std::string why) {
    if (st->resp_end && error == NGHTTP2_NO_ERROR) return;  // complete
    if (FindDown(st->down_id) != st) return;                // the client is gone already
    if (!st->resp_started) {
      const bool refused = error == NGHTTP2_REFUSED_STREAM;
      SendLocal(st, refused ? 503 : 502, refused ? "upstream refused the stream" : "upstream error",
                {}, std::move(why));
      return;
    }
    st->detail = std::move(why);
    again_ = true;
    nghttp2_submit_rst_stream(down_->session.get(), NGHTTP2_FLAG_NONE, st->down_id,
                              error == NGHTTP2_NO_ERROR ? uint32_t{NGHTTP2_INTERNAL_ERROR} : error);
  }

  void SubmitResponse(const std::shared_ptr<H2Stream>& st, bool end_stream) {
    nv_.clear();
    std::string status = std::to_string(st->status);
    nv_.push_back(Nv(":status", status));
    StripHopByHop(st->resp_headers);
    for (const HttpHeader& h : st->resp_headers) {
      if (!h.name.empty() && h.name[0] == ':') continue;
      nv_.push_back(Nv(h.name, h.value));
    }
    nghttp2_data_provider provider{};
    provider.source.ptr = st.get();
    provider.read_callback = ReadResponseBody;
    st->resp_started = true;
    int rv = nghttp2_submit_response(down_->session.get(), st->down_id, nv_.data(), nv_.size(),
                                     end_stream ? nullptr : &provider);
    if (rv != 0) {
      nghttp2_submit_rst_stream(down_->session.get(), NGHTTP2_FLAG_NONE, st->down_id,
                                NGHTTP2_INTERNAL_ERROR);
    }
  }

  void Report(H2Stream& st) {
    if (!a_.on_request || st.phase == H2Stream::Phase::kHeaders) return;
    RequestLog log;
    log.method = st.head.method;
    log.path = st.head.path;
    log.authority = st.head.authority;
    log.h2 = true;
    log.status = st.status;
    log.local = st.local;
    log.request_body_bytes = st.req_bytes;
    log.response_body_bytes = st.resp_bytes;
    log.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - st.start);
    log.detail = st.detail;
    a_.on_request(log);
  }

  // ---- data providers ---------------------------------------------------------------------

  // One direction of a stream: what was received on one session, waiting to go out on the
  // other. Returns the DATA frame payload length, or DEFERRED (resumed when more arrives).
  struct Direction {
    ByteQueue& body;
    bool end;
    std::vector<HttpHeader>& trailers;
    bool& deferred;
    uint64_t& counted;
  };
  static ssize_t FillFrame(Direction d, nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                           size_t length, uint32_t* flags, size_t* moved) {
    size_t n = std::min(length, d.body.size());
    *moved = n;
    if (n > 0) {
      std::memcpy(buf, d.body.data(), n);
      d.body.Consume(n);
      d.counted += n;
    }
    if (d.body.empty() && d.end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!d.trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nv;
        for (HttpHeader& h : d.trailers) {
          LowerInPlace(h.name);
          nv.push_back(Nv(h.name, h.value));
        }
        nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());
      }
      return static_cast<ssize_t>(n);
    }
    if (n == 0) {
      d.deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }

  // Request DATA on the upstream session; what went out is consumed on the downstream one.
  static ssize_t ReadRequestBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                 size_t length, uint32_t* flags, nghttp2_data_source* source,
                                 void* ud) {
    auto* st = static_cast<H2Stream*>(source->ptr);
    H2Conn* c = static_cast<Io*>(ud)->conn;
    size_t moved = 0;
    ssize_t rv =
        FillFrame({st->req_body, st->req_end, st->req_trailers, st->up_deferred, st->req_bytes},
                  session, stream_id, buf, length, flags, &moved);
    if (moved > 0 && !c->down_->dead) {
      nghttp2_session_consume(c->down_->session.get(), st->down_id, moved);
    }
    return rv;
  }

  // Response DATA on the downstream session; what went out is consumed on the upstream one.
  static ssize_t ReadResponseBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                  size_t length, uint32_t* flags, nghttp2_data_source* source,
                                  void*) {
    auto* st = static_cast<H2Stream*>(source->ptr);
    size_t moved = 0;
    ssize_t rv = FillFrame(
        {st->resp_body, st->resp_end, st->resp_trailers, st->down_deferred, st->resp_bytes},
        session, stream_id, buf, length, flags, &moved);
    if (auto io = st->up.lock(); moved > 0 && io && !io->dead) {
      nghttp2_session_consume(io->session.get(), st->up_id, moved);
    }
    return rv;
  }

  static ssize_t ReadLocalBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                               uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* st = static_cast<H2Stream*>(source->ptr);
    size_t n = std::min(length, st->local_body.size() - st->local_off);
    std::memcpy(buf, st->local_body.data() + st->local_off, n);
    st->local_off += n;
    st->resp_bytes += n;
    if (st->local_off == st->local_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  // ---- nghttp2 callbacks ------------------------------------------------------------------

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    Io* io = static_cast<Io*>(ud);
    H2Conn* c = io->conn;
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (io->server) {
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        auto st = std::make_shared<H2Stream>();
        st->down_id = frame->hd.stream_id;
        st->start = Clock::now();
        st->head.h2 = true;
        st->head.scheme.clear();
        c->streams_[st->down_id] = st;
      } else if (auto st = c->FindDown(frame->hd.stream_id)) {
        st->in_trailers = true;
      }
      return 0;
    }
    auto it = io->streams.find(frame->hd.stream_id);
    if (it == io->streams.end()) return 0;
    H2Stream& st = *it->second;
    if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && st.status >= 200) {
      st.resp_in_trailers = true;
    } else {
      st.resp_headers.clear();
    }
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    Io* io = static_cast<Io*>(ud);
    H2Conn* c = io->conn;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (!io->server) {
      auto it = io->streams.find(frame->hd.stream_id);
      if (it == io->streams.end()) return 0;
      H2Stream& st = *it->second;
      if (n == ":status") {
        int status = 0;
        for (char ch : v) status = status * 10 + (ch - '0');
        st.status = status;
        return 0;
      }
      (st.resp_in_trailers ? st.resp_trailers : st.resp_headers)
          .push_back({std::string(n), std::string(v)});
      return 0;
    }
    auto st = c->FindDown(frame->hd.stream_id);
    if (!st) return 0;
    st->header_bytes += namelen + valuelen + 32;
    size_t count = st->head.headers.size() + st->req_trailers.size();
    if (st->header_bytes > c->a_.options.max_request_headers_bytes ||
        count >= c->a_.options.max_headers) {
      st->too_big = true;
      return 0;
    }
    if (st->in_trailers) {
      st->req_trailers.push_back({std::string(n), std::string(v)});
      return 0;
    }
    if (!n.empty() && n[0] == ':') {
      if (n == ":method") {
        st->head.method.assign(v);
      } else if (n == ":path") {
        st->head.path.assign(v);
      } else if (n == ":authority") {
        st->head.authority.assign(v);
      } else if (n == ":scheme") {
        st->head.scheme.assign(v);
      } else {
        st->bad = true;
        st->bad_why = StrCat("pseudo-header ", n);
      }
      return 0;
    }
    st->head.headers.push_back({std::string(n), std::string(v)});
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    Io* io = static_cast<Io*>(ud);
    H2Conn* c = io->conn;
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      io->goaway = true;
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    if (io->server) {
      auto st = c->FindDown(frame->hd.stream_id);
      if (!st) return 0;
      if (end_stream) {
        st->req_end = true;
        c->ResumeUp(*st);
      }
      if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        c->OnRequestHead(st);
      }
      return 0;
    }
    auto it = io->streams.find(frame->hd.stream_id);
    if (it == io->streams.end()) return 0;
    std::shared_ptr<H2Stream> st = it->second;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->resp_in_trailers) {
      if (st->status / 100 == 1) {  // interim: dropped
        st->status = 0;
        st->resp_headers.clear();
        return 0;
      }
      if (end_stream) st->resp_end = true;
      if (st->phase == H2Stream::Phase::kForward) c->SubmitResponse(st, end_stream);
      return 0;
    }
    if (end_stream) {
      st->resp_end = true;
      c->ResumeDown(*st);
    }
    (void)session;
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* ud) {
    Io* io = static_cast<Io*>(ud);
    H2Conn* c = io->conn;
    if (io->server) {
      auto st = c->FindDown(stream_id);
      if (!st || st->phase == H2Stream::Phase::kLocal) {
        nghttp2_session_consume(session, stream_id, len);
        if (st) st->req_bytes += len;
        return 0;
      }
      st->req_body.Append(data, len);
      c->ResumeUp(*st);
      return 0;
    }
    auto it = io->streams.find(stream_id);
    if (it == io->streams.end() || it->second->phase != H2Stream::Phase::kForward) {
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    H2Stream& st = *it->second;
    st.resp_body.Append(data, len);
    c->ResumeDown(st);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error, void* ud) {
    Io* io = static_cast<Io*>(ud);
    H2Conn* c = io->conn;
    if (io->server) {
      auto it = c->streams_.find(stream_id);
      if (it == c->streams_.end()) return 0;
      std::shared_ptr<H2Stream> st = it->second;
      c->streams_.erase(it);
      if (error != NGHTTP2_NO_ERROR && st->detail.empty()) {
        st->detail = StrCat("downstream-reset: ", nghttp2_http2_strerror(error));
      }
      // The client is gone (or done): an upstream stream still open is cancelled.
      if (auto up = st->up.lock(); up && !st->up_closed && !up->dead && st->up_id > 0 &&
                                   !(st->resp_end && st->req_end && st->req_body.empty())) {
        nghttp2_submit_rst_stream(up->session.get(), NGHTTP2_FLAG_NONE, st->up_id, NGHTTP2_CANCEL);
      }
      c->Report(*st);
      st->phase = H2Stream::Phase::kLocal;  // decisions still to come are ignored
      return 0;
    }
    auto it = io->streams.find(stream_id);
    if (it == io->streams.end()) return 0;
    std::shared_ptr<H2Stream> st = it->second;
    io->streams.erase(it);
    st->up_closed = true;
    if (error != NGHTTP2_NO_ERROR || !st->resp_end) {
      c->UpstreamStreamEnded(st, error, StrCat("upstream-reset: ", nghttp2_http2_strerror(error)));
    }
    // A request body the upstream no longer wants is dropped from here on.
    if (!st->req_body.empty() && !c->down_->dead) {
      nghttp2_session_consume(c->down_->session.get(), st->down_id, st->req_body.size());
      st->req_body.Clear();
    }
    return 0;
  }

  void ResumeUp(H2Stream& st) {
    if (!st.up_deferred) return;
    if (auto io = st.up.lock(); io && !io->dead && !st.up_closed) {
      st.up_deferred = false;
      nghttp2_session_resume_data(io->session.get(), st.up_id);
    }
  }

  void ResumeDown(H2Stream& st) {
    if (!st.down_deferred) return;
    st.down_deferred = false;
    nghttp2_session_resume_data(down_->session.get(), st.down_id);
  }

  // ---- timeouts ---------------------------------------------------------------------------

  void ArmTimer() {
    deadlines_.Arm(last_activity_ + a_.options.idle_timeout,
                   [self = shared_from_this()] { self->OnTimer(); });
  }

  void OnTimer() {
    if (finished_) return;
    if (Clock::now() >= last_activity_ + a_.options.idle_timeout) {
      if (streams_.empty()) {
        nghttp2_session_terminate_session(down_->session.get(), NGHTTP2_NO_ERROR);
        down_->goaway = true;
        Drive();
        // Whatever happens to the GOAWAY, the connection goes.
        Finish("idle timeout");
        return;
      }
      Finish("idle timeout with streams open");
      return;
    }
    ArmTimer();
  }

  ServeArgs a_;
  asio::any_io_executor executor_;
  Deadlines deadlines_;
  std::shared_ptr<Io> down_;
  std::vector<std::shared_ptr<Io>> ups_;
  std::shared_ptr<Io> cur_up_;
  bool opening_ = false;
  std::deque<std::shared_ptr<H2Stream>> waiting_;
  std::map<int32_t, std::shared_ptr<H2Stream>> streams_;  // by downstream id
  std::vector<nghttp2_nv> nv_;
  bool driving_ = false, again_ = false, in_nghttp2_ = false;
  bool finished_ = false;
  bool down_eof_ = false;
  Clock::time_point last_activity_{};
};

}  // namespace

void ServeHttp2(ServeArgs args, ByteBuffer initial, size_t initial_len) {
  auto conn = std::make_shared<H2Conn>(std::move(args));
  conn->Start(std::move(initial), initial_len);
}

}  // namespace zm::waypoint::internal

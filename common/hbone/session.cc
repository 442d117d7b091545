#include "common/hbone/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "common/base/log.h"
#include "common/base/strings.h"

namespace zm::hbone {
namespace {

std::atomic<uint64_t> g_next_session_id{1};

bool IsReset(const asio::error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

void ResetSocket(asio::ip::tcp::socket& socket) {
  if (!socket.is_open()) return;
  linger l{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  asio::error_code ignored;
  socket.close(ignored);
}



// The C callbacks of nghttp2, forwarding into the session. None of them may call
// nghttp2_session_mem_send/recv; SendPending() is a no-op while inside nghttp2.
struct Nghttp2Glue {
  static SessionBase* S(void* user_data) { return static_cast<SessionBase*>(user_data); }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    SessionBase* s = S(ud);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (s->server_ && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto st = s->NewStream();
      st->id_ = frame->hd.stream_id;
      s->streams_[st->id_] = st;
      s->counters_.streams_opened++;
      return 0;
    }
    if (auto st = s->Find(frame->hd.stream_id)) {
      st->headers_.clear();
      st->headers_size_ = 0;
    }
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    auto st = S(ud)->Find(frame->hd.stream_id);
    if (!st || st->finished_) return 0;
    constexpr size_t kMaxHeaderList = 16 * 1024;
    st->headers_size_ += namelen + valuelen + 32;
    if (st->headers_size_ > kMaxHeaderList) {
      st->headers_bad_ = true;
      st->headers_error_ = "header list too large";
      return 0;
    }
    std::string n(reinterpret_cast<const char*>(name), namelen);
    if (std::any_of(n.begin(), n.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      st->headers_bad_ = true;
      st->headers_error_ = StrCat("upper-case header name '", n, "'");
    }
    if (!n.empty() && n[0] == ':' && !st->headers_.empty() &&
        st->headers_.back().name.rfind(':', 0) != 0) {
      st->headers_bad_ = true;
      st->headers_error_ = "pseudo-header after a regular header";
    }
    st->headers_.push_back(
        {std::move(n), std::string(reinterpret_cast<const char*>(value), valuelen)});
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
    SessionBase* s = S(ud);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA: {
        auto st = s->Find(frame->hd.stream_id);
        if (!st) return 0;
        const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (end_stream) st->peer_eof_ = true;
        if (frame->hd.type == NGHTTP2_HEADERS && !st->finished_) s->OnHeadersComplete(st, frame);
        if (end_stream && !st->finished_) s->StartSocketWrite(st);
        return 0;
      }
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
          s->counters_.pings_acked++;
          s->ping_outstanding_ = false;
          s->ping_timeout_timer_.cancel();
        }
        return 0;
      case NGHTTP2_GOAWAY:
        s->goaway_received_ = true;
        Log("hbone").debug("conn={} GOAWAY from peer (error {})", s->id_,
                           nghttp2_http2_strerror(frame->goaway.error_code));
        return 0;
      default:
        return 0;
    }
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t len, void* ud) {
    auto st = S(ud)->Find(stream_id);
    if (!st || st->finished_) {
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    st->in_.emplace_back(reinterpret_cast<const char*>(data),
                         reinterpret_cast<const char*>(data) + len);
    st->in_bytes_ += len;
    S(ud)->StartSocketWrite(st);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
    SessionBase* s = S(ud);
    auto st = s->Find(stream_id);
    if (!st) return 0;
    st->h2_closed_ = true;
    if (!st->finished_) {
      const bool clean = error_code == NGHTTP2_NO_ERROR && st->peer_eof_ && st->eof_sent_;
      if (!clean) {
        st->result_.result = "peer-reset";
        st->result_.detail = StrCat("stream closed: ", nghttp2_http2_strerror(error_code));
        if (st->socket_) st->socket_->Reset();
        s->Finish(st);
      } else {
        s->MaybeFinish(st);
      }
    }
    if (st->finished_) s->streams_.erase(stream_id);
    return 0;
  }

  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto st = S(ud)->Find(frame->hd.stream_id);
    if (st && st->rst_after_headers_ && !st->h2_closed_) {
      st->rst_after_headers_ = false;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id_, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* ud) {
    SessionBase* s = S(ud);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto st = s->Find(frame->hd.stream_id);
    if (!st || st->finished_) return 0;
    st->result_.result = "local-reset";
    st->result_.detail = StrCat("HEADERS not sent: ", nghttp2_strerror(lib_error));
    if (st->socket_) st->socket_->Reset();
    s->Finish(st);
    return 0;
  }

  static int OnInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* ud) {
    Log("hbone").debug("conn={} stream={} invalid frame type {}: {}", S(ud)->id_,
                       frame->hd.stream_id, frame->hd.type, nghttp2_strerror(lib_error));
    return 0;
  }

  static int OnError(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
    Log("hbone").debug("conn={} nghttp2: {}", S(ud)->id_, std::string_view(msg, len));
    return 0;
  }

  // DATA frames as large as the peer allows (up to one socket read), not nghttp2's 16 KiB.
  static ssize_t ReadLength(nghttp2_session*, uint8_t, int32_t, int32_t, int32_t,
                            uint32_t remote_max_frame_size, void* ud) {
    return static_cast<ssize_t>(
        std::min<size_t>(remote_max_frame_size, S(ud)->options_.socket_read_size));
  }

  static ssize_t ReadData(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* ud) {
    SessionBase* s = S(ud);
    auto* raw = static_cast<HboneStream*>(source->ptr);
    std::shared_ptr<HboneStream> st = raw->shared_from_this();
    if (st->finished_) return NGHTTP2_ERR_DEFERRED;
    if (st->out_off_ < st->out_len_) {
      size_t n = std::min(length, st->out_len_ - st->out_off_);
      std::memcpy(buf, st->out_.data() + st->out_off_, n);
      st->out_off_ += n;
      st->result_.bytes_to_stream += n;
      if (st->out_off_ == st->out_len_) {
        st->out_off_ = st->out_len_ = 0;
        if (st->socket_eof_) {
          *data_flags |= NGHTTP2_DATA_FLAG_EOF;
          st->eof_sent_ = true;
        } else {
          s->StartSocketRead(st);
        }
      }
      return static_cast<ssize_t>(n);
    }
    if (st->socket_eof_) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      st->eof_sent_ = true;
      return 0;
    }
    st->deferred_ = true;
    s->StartSocketRead(st);
    return NGHTTP2_ERR_DEFERRED;
  }
};

namespace {

struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};
struct OptionDeleter {
  void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};

}  // namespace

HboneStream::HboneStream(std::weak_ptr<SessionBase> session, size_t read_size)
    : session_(std::move(session)) {
  out_.resize(read_size);
}

void HboneStream::Start(asio::ip::tcp::socket socket, Done done) {
  Start(TcpByteStream(std::move(socket)), std::move(done));
}

void HboneStream::Start(std::unique_ptr<ByteStream> peer, Done done) {
  auto s = session_.lock();
  if (!s) {
    peer->Reset();
    StreamResult r;
    r.result = "session-closed";
    if (done) done(r);
    return;
  }
  asio::dispatch(s->executor(), [s, st = shared_from_this(), peer = std::move(peer),
                                 done = std::move(done)]() mutable {
    s->Attach(st, std::move(peer), std::move(done));
  });
}

void HboneStream::Reset() {
  auto s = session_.lock();
  if (!s) return;
  asio::dispatch(s->executor(), [s, st = shared_from_this()] {
    s->ResetStream(st, NGHTTP2_CANCEL, "local-reset", "Reset() called");
  });
}

SessionBase::SessionBase(std::unique_ptr<Transport> transport, SessionOptions options, bool server)
    : options_(options),
      id_(g_next_session_id.fetch_add(1)),
      transport_(std::move(transport)),
      executor_(transport_->executor()),
      server_(server),
      read_buf_(64 * 1024),
      ping_timer_(executor_),
      ping_timeout_timer_(executor_) {
  nghttp2_session_callbacks* raw_cbs = nullptr;
  if (nghttp2_session_callbacks_new(&raw_cbs) != 0) std::abort();
  std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> cbs(raw_cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), Nghttp2Glue::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs.get(), Nghttp2Glue::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), Nghttp2Glue::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), Nghttp2Glue::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), Nghttp2Glue::OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs.get(), Nghttp2Glue::OnFrameSend);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs.get(), Nghttp2Glue::OnFrameNotSend);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs.get(),
                                                               Nghttp2Glue::OnInvalidFrame);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cbs.get(),
                                                                 Nghttp2Glue::ReadLength);
  nghttp2_session_callbacks_set_error_callback2(cbs.get(), Nghttp2Glue::OnError);

  nghttp2_option* raw_opt = nullptr;
  if (nghttp2_option_new(&raw_opt) != 0) std::abort();
  std::unique_ptr<nghttp2_option, OptionDeleter> opt(raw_opt);
  // WINDOW_UPDATEs only for bytes the socket accepted (nghttp2_session_consume).
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  // We validate CONNECT requests ourselves, so malformed ones get a 400 instead of a
  // RST_STREAM(PROTOCOL_ERROR) from nghttp2.
  nghttp2_option_set_no_http_messaging(opt.get(), 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt.get(), options_.max_concurrent_streams);
  int rv = server ? nghttp2_session_server_new2(&session_, cbs.get(), this, opt.get())
                  : nghttp2_session_client_new2(&session_, cbs.get(), this, opt.get());
  if (rv != 0) std::abort();  // only on out-of-memory
}

SessionBase::~SessionBase() { nghttp2_session_del(session_); }

std::shared_ptr<HboneStream> SessionBase::NewStream() {
  return std::make_shared<HboneStream>(weak_from_this(), options_.socket_read_size);
}

std::shared_ptr<HboneStream> SessionBase::Find(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

void SessionBase::Start() {
  asio::dispatch(executor_, [self = shared_from_this()] {
    if (self->started_ || self->closed_) return;
    self->started_ = true;
    std::vector<nghttp2_settings_entry> settings = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, self->options_.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, self->options_.stream_window},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, self->options_.max_frame_size},
    };
    if (!self->server_) settings.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
    nghttp2_submit_settings(self->session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    nghttp2_session_set_local_window_size(self->session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(self->options_.connection_window));
    self->Read();
    self->ArmPing();
    self->SendPending();
  });
}

void SessionBase::SetOnClosed(std::function<void(const std::string&)> cb) {
  asio::dispatch(executor_, [self = shared_from_this(), cb = std::move(cb)]() mutable {
    if (self->closed_) {
      asio::post(self->executor_, [cb = std::move(cb)] { cb("already closed"); });
      return;
    }
    self->on_closed_ = std::move(cb);
  });
}

SessionStats SessionBase::stats() const {
  SessionStats s = counters_;
  s.active_streams = streams_.size();
  for (const auto& [id, st] : streams_) s.buffered_bytes += st->in_bytes_;
  return s;
}

void SessionBase::GoAway() {
  if (closed_ || !started_) return;
  int rv = nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                                 nghttp2_session_get_last_proc_stream_id(session_),
                                 NGHTTP2_NO_ERROR, nullptr, 0);
  if (rv != 0) {
    Close(StrCat("GOAWAY: ", nghttp2_strerror(rv)));
    return;
  }
  Log("hbone").debug("conn={} GOAWAY sent ({} streams still open)", id_, streams_.size());
  // With no stream left, nghttp2 wants neither to read nor to write once the frame is out, and
  // SendPending closes the session.
  SendPending();
}

void SessionBase::Close(std::string reason) {
  if (closed_) return;
  closed_ = true;
  Log("hbone").info("conn={} session closed: {} ({} streams)", id_, reason, streams_.size());
  ping_timer_.cancel();
  ping_timeout_timer_.cancel();
  transport_->Close();
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, st] : streams) {
    if (st->finished_) continue;
    st->result_.result = "session-closed";
    st->result_.detail = reason;
    if (st->socket_) st->socket_->Reset();
    st->h2_closed_ = true;
    Finish(st);
  }
  if (on_closed_) {
    asio::post(executor_, [cb = std::exchange(on_closed_, nullptr), reason] { cb(reason); });
  }
}

void SessionBase::Read() {
  transport_->AsyncReadSome(
      asio::buffer(read_buf_), [self = shared_from_this()](const asio::error_code& ec, size_t n) {
        if (self->closed_) return;
        if (ec) {
          self->Close(ec == asio::error::eof ? std::string("peer closed the connection")
                                             : StrCat("read: ", ec.message()));
          return;
        }
        self->in_nghttp2_ = true;
        ssize_t rv = nghttp2_session_mem_recv(
            self->session_, reinterpret_cast<const uint8_t*>(self->read_buf_.data()), n);
        self->in_nghttp2_ = false;
        if (rv < 0) {
          self->Close(StrCat("bad HTTP/2 from the peer: ", nghttp2_strerror(static_cast<int>(rv))));
          return;
        }
        self->SendPending();
        if (self->closed_) return;
        self->Read();
      });
}

void SessionBase::SendPending() {
  if (closed_ || writing_ || in_nghttp2_ || !started_) return;
  constexpr size_t kBatch = 256 * 1024;
  out_.clear();
  while (out_.size() < kBatch) {
    const uint8_t* data = nullptr;
    in_nghttp2_ = true;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    in_nghttp2_ = false;
    if (n < 0) {
      Close(StrCat("nghttp2_session_mem_send: ", nghttp2_strerror(static_cast<int>(n))));
      return;
    }
    if (n == 0) break;
    out_.insert(out_.end(), data, data + n);
  }
  if (closed_) return;
  if (out_.empty()) {
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      Close("session finished (GOAWAY)");
    }
    return;
  }
  writing_ = true;
  WriteOut(0);
}

void SessionBase::WriteOut(size_t off) {
  transport_->AsyncWriteSome(
      asio::buffer(out_.data() + off, out_.size() - off),
      [self = shared_from_this(), off](const asio::error_code& ec, size_t n) {
        if (self->closed_) return;
        if (ec) {
          self->Close(StrCat("write: ", ec.message()));
          return;
        }
        if (off + n < self->out_.size()) {
          self->WriteOut(off + n);
          return;
        }
        self->writing_ = false;
        self->SendPending();
      });
}

void SessionBase::ArmPing() {
  ping_timer_.expires_after(options_.ping_interval);
  ping_timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
    if (ec || self->closed_) return;
    if (!self->ping_outstanding_) {
      nghttp2_submit_ping(self->session_, NGHTTP2_FLAG_NONE, nullptr);
      self->counters_.pings_sent++;
      self->ping_outstanding_ = true;
      uint64_t gen = ++self->ping_generation_;
      self->ping_timeout_timer_.expires_after(self->options_.ping_timeout);
      self->ping_timeout_timer_.async_wait([self, gen](const asio::error_code& ec) {
        if (ec || self->closed_) return;
        if (self->ping_outstanding_ && gen == self->ping_generation_) {
          self->Close("PING timeout");
        }
      });
      self->SendPending();
    }
    self->ArmPing();
  });
}

nghttp2_data_provider SessionBase::DataProvider(HboneStream* st) {
  nghttp2_data_provider dp;
  dp.source.ptr = st;
  dp.read_callback = Nghttp2Glue::ReadData;
  return dp;
}

void SessionBase::Attach(const std::shared_ptr<HboneStream>& st, std::unique_ptr<ByteStream> peer,
                         HboneStream::Done done) {
  if (st->finished_ || closed_ || st->socket_) {
    peer->Reset();
    if (done) {
      StreamResult r = st->result_;
      if (r.result == "ok") r.result = closed_ ? "session-closed" : "local-reset";
      asio::post(executor_, [done = std::move(done), r] { done(r); });
    }
    return;
  }
  st->socket_ = std::move(peer);
  st->done_ = std::move(done);
  StartSocketWrite(st);
  StartSocketRead(st);
  SendPending();
}

void SessionBase::StartSocketWrite(const std::shared_ptr<HboneStream>& st) {
  if (st->finished_ || !st->socket_ || st->writing_) return;
  if (st->in_.empty()) {
    if (st->peer_eof_ && !st->socket_shut_) {
      st->socket_->ShutdownSend();
      st->socket_shut_ = true;
      MaybeFinish(st);
    }
    return;
  }
  std::vector<asio::const_buffer> bufs;
  size_t i = 0;
  for (const auto& chunk : st->in_) {
    size_t off = i == 0 ? st->in_front_off_ : 0;
    bufs.emplace_back(chunk.data() + off, chunk.size() - off);
    if (++i == 16) break;
  }
  st->writing_ = true;
  st->socket_->AsyncWriteSome(
      bufs, [self = shared_from_this(), st](const asio::error_code& ec, size_t n) {
        st->writing_ = false;
        if (st->finished_ || self->closed_) return;
        if (ec) {
          self->ResetStream(st, NGHTTP2_CONNECT_ERROR,
                            IsReset(ec) ? "socket-reset" : "socket-error", ec.message());
          return;
        }
        size_t left = n;
        while (left > 0) {
          auto& front = st->in_.front();
          size_t avail = front.size() - st->in_front_off_;
          if (left >= avail) {
            left -= avail;
            st->in_.pop_front();
            st->in_front_off_ = 0;
          } else {
            st->in_front_off_ += left;
            left = 0;
          }
        }
        st->in_bytes_ -= n;
        st->result_.bytes_to_socket += n;
        nghttp2_session_consume(self->session_, st->id_, n);
        self->StartSocketWrite(st);
        self->SendPending();
      });
}

void SessionBase::StartSocketRead(const std::shared_ptr<HboneStream>& st) {
  if (st->finished_ || !st->socket_ || st->reading_ || st->socket_eof_ ||
      st->out_off_ < st->out_len_) {
    return;
  }
  st->reading_ = true;
  st->socket_->AsyncReadSome(asio::buffer(st->out_.data(), st->out_.size()), [self = shared_from_this(), st](
                                                           const asio::error_code& ec, size_t n) {
    st->reading_ = false;
    if (st->finished_ || self->closed_) return;
    if (ec == asio::error::eof) {
      st->socket_eof_ = true;
    } else if (ec) {
      self->ResetStream(st, NGHTTP2_CONNECT_ERROR, IsReset(ec) ? "socket-reset" : "socket-error",
                        ec.message());
      return;
    } else {
      st->out_off_ = 0;
      st->out_len_ = n;
    }
    if (st->deferred_) {
      st->deferred_ = false;
      nghttp2_session_resume_data(self->session_, st->id_);
    }
    self->SendPending();
  });
}

void SessionBase::ResetStream(const std::shared_ptr<HboneStream>& st, uint32_t h2_error,
                              std::string result, std::string detail) {
  if (st->finished_) return;
  Log("hbone").debug("conn={} stream={} reset: {} {}", id_, st->id_, result, detail);
  st->result_.result = std::move(result);
  st->result_.detail = std::move(detail);
  if (!st->h2_closed_ && st->id_ > 0 && !closed_) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st->id_, h2_error);
  }
  if (st->socket_) st->socket_->Reset();
  Finish(st);
  SendPending();
}

void SessionBase::MaybeFinish(const std::shared_ptr<HboneStream>& st) {
  if (!st->finished_ && st->h2_closed_ && st->socket_shut_) Finish(st);
}

void SessionBase::Finish(const std::shared_ptr<HboneStream>& st) {
  if (st->finished_) return;
  st->finished_ = true;
  // Bytes we will never write still count against the connection window.
  if (st->in_bytes_ > 0 && !closed_) nghttp2_session_consume(session_, st->id_, st->in_bytes_);
  st->in_.clear();
  st->in_bytes_ = 0;
  st->in_front_off_ = 0;
  if (st->socket_) st->socket_->Close();
  if (st->open_cb_) {
    OnStreamGone(st, st->result_.detail.empty() ? st->result_.result : st->result_.detail);
  }
  if (st->done_) {
    asio::post(executor_, [done = std::exchange(st->done_, nullptr), r = st->result_] { done(r); });
  }
  if (st->h2_closed_) streams_.erase(st->id_);
}

}  // namespace zm::hbone

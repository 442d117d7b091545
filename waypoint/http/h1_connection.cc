// The HTTP/1.x engine: one downstream connection, one request at a time (pipelined requests wait
// in the read buffer until the previous response is out), bodies streamed through fixed 64 KiB
// buffers (a write references the bytes of the read buffer: no copy), http_parser for both
// directions, heads re-serialized (the upstream never sees the client's raw head).

#include <http_parser.h>

#include <array>
#include <charconv>
#include <cstring>

#include "common/base/log.h"
#include "waypoint/http/internal.h"

namespace zm::waypoint::internal {
namespace {

constexpr size_t kBufSize = 64 * 1024;
// Request body bytes read and dropped after a local response before the connection is closed
// instead (a denied upload is not read to its end).
constexpr size_t kMaxDiscard = 256 * 1024;
// After the last response: how long unread request bytes are drained before closing, so a
// TCP peer does not get a RST that destroys the response in flight.
constexpr auto kLinger = std::chrono::seconds(2);
// Chunk-size lines of one write are kept here (at most 18 bytes each).
constexpr size_t kScratch = 4096;
constexpr size_t kMaxGather = 512;
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// One byte stream with its read buffer and its write in progress.
struct Side {
  std::unique_ptr<hbone::ByteStream> stream;
  ByteBuffer buf;
  size_t pos = 0, end = 0;  // [pos, end): read, not yet parsed
  bool reading = false;
  bool writing = false;
  bool eof = false;     // read EOF
  bool failed = false;  // read or write error
  uint64_t gen = 0;     // completions of an earlier stream are ignored
  std::vector<asio::const_buffer> out;
  std::array<char, kScratch> scratch;
  size_t scratch_used = 0;

  size_t Unparsed() const { return end - pos; }
  const char* Data() const { return buf.data() + pos; }
  bool Usable() const { return stream && !eof && !failed; }
  void Add(std::string_view s) {
    if (!s.empty()) out.emplace_back(s.data(), s.size());
  }
  bool GatherFull() const { return scratch_used + 32 > kScratch || out.size() >= kMaxGather; }
  // "<hex>\r\n" in the scratch area.
  void AddChunkSize(size_t n) {
    char* p = scratch.data() + scratch_used;
    auto r = std::to_chars(p, p + 16, n, 16);
    r.ptr[0] = '\r';
    r.ptr[1] = '\n';
    size_t len = static_cast<size_t>(r.ptr + 2 - p);
    scratch_used += len;
    out.emplace_back(p, len);
  }
};

enum class Req { kHead, kFilter, kOpen, kBody, kDiscard, kDone };
enum class Resp { kNone, kUpstream, kLocal, kDone };
enum class Last { kNone, kField, kValue };

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

void AppendNumber(std::string& out, uint64_t n) {
  char num[24];
  auto r = std::to_chars(num, num + sizeof(num), n);
  out.append(num, r.ptr);
}

// Header fields reused across messages: slots keep their string capacity.
struct FieldList {
  std::vector<HttpHeader> slots;
  size_t n = 0;
  Last last = Last::kNone;
  bool overflow = false;
  size_t max = 100;

  void Reset() {
    n = 0;
    last = Last::kNone;
    overflow = false;
  }
  void OnField(const char* p, size_t len) {
    if (last != Last::kField) {
      if (n >= max) {
        overflow = true;
        return;
      }
      if (slots.size() <= n) slots.emplace_back();
      slots[n].name.clear();
      slots[n].value.clear();
      ++n;
    }
    last = Last::kField;
    slots[n - 1].name.append(p, len);
  }
  void OnValue(const char* p, size_t len) {
    if (n == 0 || overflow) return;
    last = Last::kValue;
    slots[n - 1].value.append(p, len);
  }
  std::string_view Get(std::string_view name) const {
    for (size_t i = 0; i < n; ++i) {
      if (EqualsIgnoreCase(slots[i].name, name)) return slots[i].value;
    }
    return {};
  }
};

class H1Conn : public std::enable_shared_from_this<H1Conn> {
 public:
  explicit H1Conn(ServeArgs args)
      : a_(std::move(args)), executor_(a_.down->executor()), deadlines_(executor_) {
    down_.stream = std::move(a_.down);
    down_.buf.resize(kBufSize);
    up_.buf.resize(kBufSize);
    http_parser_init(&req_p_, HTTP_REQUEST);
    req_p_.data = this;
    http_parser_init(&resp_p_, HTTP_RESPONSE);
    resp_p_.data = this;
    req_fields_.max = a_.options.max_headers;
    resp_fields_.max = a_.options.max_headers;
    trailer_fields_.max = a_.options.max_headers;
    resp_trailer_fields_.max = a_.options.max_headers;
  }

  void Start() {
    last_activity_ = Clock::now();
    ArmTimer();
    Drive();
  }

 private:
  // ---- the loop ---------------------------------------------------------------------------

  // Does everything that can be done now; re-entrant calls (a filter answering inline) are
  // folded into the running one.
  void Drive() {
    if (driving_) {
      again_ = true;
      return;
    }
    driving_ = true;
    do {
      again_ = false;
      while (!finished_ && Step()) {
      }
      if (!finished_) StartReads();
    } while (again_ && !finished_);
    driving_ = false;
  }

  bool Step() {
    if (lingering_) return Linger();
    if (down_.failed && !closing_) {
      Abort("downstream-reset");
      return false;
    }
    bool progress = false;
    switch (req_) {
      case Req::kHead:
        progress |= StepHead();
        break;
      case Req::kBody:
        progress |= StepBody();
        break;
      case Req::kDiscard:
        progress |= StepDiscard();
        break;
      default:
        break;
    }
    if (finished_ || handed_over_) return false;
    progress |= StepResponse();
    if (finished_) return false;
    progress |= StepUpstreamIdle();
    progress |= StepCycle();
    return progress && !finished_;
  }

  void StartReads() {
    if (handed_over_) return;
    MaybeRead(down_, /*pinned=*/up_.writing);
    if (up_.stream) MaybeRead(up_, /*pinned=*/down_.writing);
  }

  void MaybeRead(Side& s, bool pinned) {
    if (s.reading || !s.Usable()) return;
    if (!pinned) {
      if (s.pos == s.end) {
        s.pos = s.end = 0;
      } else if (s.end == kBufSize && s.pos > 0) {
        std::memmove(s.buf.data(), s.buf.data() + s.pos, s.end - s.pos);
        s.end -= s.pos;
        s.pos = 0;
      }
    }
    if (s.end == kBufSize) return;  // full: back-pressure
    s.reading = true;
    s.stream->AsyncReadSome(
        asio::buffer(s.buf.data() + s.end, kBufSize - s.end),
        [self = shared_from_this(), &s, gen = s.gen](const asio::error_code& ec, size_t n) {
          if (self->finished_ || gen != s.gen) return;
          s.reading = false;
          self->last_activity_ = Clock::now();
          if (ec) {
            (ec == asio::error::eof ? s.eof : s.failed) = true;
          } else {
            s.end += n;
          }
          self->Drive();
        });
  }

  void StartWrite(Side& s) {
    if (s.out.empty()) return;
    s.writing = true;
    s.stream->AsyncWriteSome(
        s.out, [self = shared_from_this(), &s, gen = s.gen](const asio::error_code& ec, size_t n) {
          if (self->finished_ || gen != s.gen) return;
          self->OnWritten(s, ec, n);
        });
  }

  void OnWritten(Side& s, const asio::error_code& ec, size_t n) {
    last_activity_ = Clock::now();
    if (ec) {
      s.writing = false;
      s.failed = true;
      s.out.clear();
      Drive();
      return;
    }
    size_t done = 0;
    while (done < s.out.size() && n >= s.out[done].size()) n -= s.out[done++].size();
    if (done < s.out.size()) {
      s.out[done] += n;
      s.out.erase(s.out.begin(), s.out.begin() + static_cast<std::ptrdiff_t>(done));
      StartWrite(s);
      return;
    }
    s.out.clear();
    s.scratch_used = 0;
    s.writing = false;
    Drive();
  }

  // ---- request head -----------------------------------------------------------------------

  bool StepHead() {
    if (closing_) return false;
    size_t avail = down_.Unparsed();
    if (avail == 0) {
      if (down_.eof || down_.failed) {
        if (head_started_) {
          BadRequest(400, "request head cut by EOF");
        } else {
          Finish("");
        }
        return true;
      }
      return false;
    }
    if (requests_ == 0 && !head_started_ && down_.pos == 0) {
      size_t n = std::min(avail, kH2Preface.size());
      if (std::string_view(down_.Data(), n) == kH2Preface.substr(0, n)) {
        if (n < kH2Preface.size() && !down_.eof) return false;  // wait for the rest
        if (n == kH2Preface.size() && !down_.reading) {
          HandOverToH2();
          return false;
        }
      }
    }
    if (!head_started_) BeginRequest();
    const char* p = down_.Data();
    size_t parsed = http_parser_execute(&req_p_, &kReqSettings, p, avail);
    ScanHead(p, parsed);
    down_.pos += parsed;
    head_bytes_ += parsed;
    http_errno err = HTTP_PARSER_ERRNO(&req_p_);
    if (req_fields_.overflow || head_bytes_ > a_.options.max_request_headers_bytes ||
        err == HPE_HEADER_OVERFLOW) {
      BadRequest(431, req_fields_.overflow ? "too many headers" : "request head too large");
      return true;
    }
    if (err != HPE_OK && err != HPE_PAUSED) {
      BadRequest(400, http_errno_name(err));
      return true;
    }
    if (bad_fold_) {
      BadRequest(400, "obs-fold in the request head");
      return true;
    }
    if (err == HPE_PAUSED) {
      http_parser_pause(&req_p_, 0);
      OnHead();
      return true;
    }
    return parsed > 0;
  }

  // Line folding (a line starting with SP/HT) is rejected; http_parser would accept it.
  void ScanHead(const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (after_lf_ && (p[i] == ' ' || p[i] == '\t')) bad_fold_ = true;
      after_lf_ = p[i] == '\n';
    }
  }

  void BeginRequest() {
    head_started_ = true;
    head_start_ = Clock::now();
    ArmTimer();
    head_bytes_ = 0;
    after_lf_ = false;
    bad_fold_ = false;
    url_.clear();
    req_fields_.Reset();
    trailer_fields_.Reset();
    req_in_trailers_ = false;
    req_complete_ = false;
    req_body_bytes_ = resp_body_bytes_ = 0;
    discarded_ = 0;
    expect_continue_ = false;
    up_head_queued_ = false;
    resp_status_ = 0;
    local_ = false;
    local_detail_.clear();
    resp_bad_ = false;
    resp_bad_why_.clear();
    keep_alive_ = false;
    head_.h2 = false;
    head_.scheme = "http";
    head_.method.clear();
    head_.path.clear();
    head_.authority.clear();
  }

  void OnHead() {
    const http_parser& p = req_p_;
    head_.method = http_method_str(static_cast<http_method>(p.method));
    http10_ = p.http_minor == 0;
    keep_alive_ = http_should_keep_alive(&p) != 0;
    if (p.http_major != 1) return BadRequest(400, "HTTP version");
    if (!IsValidMethod(head_.method)) return BadRequest(400, "method");
    size_t nhost = 0;
    size_t nte = 0;
    std::string_view host, te, expect;
    for (size_t i = 0; i < req_fields_.n; ++i) {
      HttpHeader& h = req_fields_.slots[i];
      if (!IsToken(h.name)) return BadRequest(400, "header name");
      std::string_view v = TrimOws(h.value);
      if (v.size() != h.value.size()) h.value.assign(v);
      if (!IsValidFieldValue(h.value)) return BadRequest(400, "header value");
      if (EqualsIgnoreCase(h.name, "host")) {
        ++nhost;
        host = h.value;
      } else if (EqualsIgnoreCase(h.name, "transfer-encoding")) {
        ++nte;
        te = h.value;
      } else if (EqualsIgnoreCase(h.name, "expect")) {
        expect = h.value;
      }
    }
    if (nhost > 1 || (nhost == 0 && !http10_)) return BadRequest(400, "Host");
    req_chunked_ = (p.flags & F_CHUNKED) != 0;
    req_cl_ = p.content_length;
    req_has_cl_ = req_cl_ != ULLONG_MAX && !req_chunked_;
    if (nte > 0 && (nte > 1 || !EqualsIgnoreCase(te, "chunked") || !req_chunked_)) {
      return BadRequest(400, "Transfer-Encoding");
    }
    if (nte > 0 && http10_) return BadRequest(400, "Transfer-Encoding in HTTP/1.0");
    if (p.method == HTTP_CONNECT) return BadRequest(501, "CONNECT inside the tunnel");
    if (p.upgrade) {
      // An h2c upgrade may be ignored (RFC 9113 §3.1 was removed; RFC 9110 §7.8: a server
      // may ignore Upgrade); anything else (WebSocket) is not supported here.
      std::string_view up = req_fields_.Get("upgrade");
      if (!EqualsIgnoreCase(TrimOws(up), "h2c")) return BadRequest(501, "Upgrade");
      closing_after_ = true;  // the client may switch protocols on its own: don't reuse
    }
    if (!SetTarget(host)) return BadRequest(400, "request target");
    expect_continue_ = !http10_ && EqualsIgnoreCase(expect, "100-continue") &&
                       (req_chunked_ || (req_has_cl_ && req_cl_ > 0));

    // The head the filter sees: regular headers without Host (-> authority), framing and
    // hop-by-hop headers, Expect (answered here).
    head_.headers.resize(req_fields_.n);
    size_t k = 0;
    for (size_t i = 0; i < req_fields_.n; ++i) {
      HttpHeader& h = req_fields_.slots[i];
      if (EqualsIgnoreCase(h.name, "host") || EqualsIgnoreCase(h.name, "content-length") ||
          EqualsIgnoreCase(h.name, "expect")) {
        continue;
      }
      head_.headers[k].name.swap(h.name);
      head_.headers[k].value.swap(h.value);
      ++k;
    }
    head_.headers.resize(k);
    StripHopByHop(head_.headers);
    req_ = Req::kFilter;
    uint64_t gen = ++request_gen_;
    a_.filter->Decide(head_, [self = shared_from_this(), gen](Decision d) {
      self->OnDecision(gen, std::move(d));
    });
  }

  bool SetTarget(std::string_view host) {
    head_.authority.assign(host);
    if (!url_.empty() && url_[0] == '/') {
      head_.path.swap(url_);
      return true;
    }
    if (url_ == "*" && head_.method == "OPTIONS") {
      head_.path = "*";
      return true;
    }
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url_.data(), url_.size(), 0, &u) != 0) return false;
    if (!(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) return false;
    auto field = [&](int f) {
      return std::string_view(url_.data() + u.field_data[f].off, u.field_data[f].len);
    };
    std::string_view scheme = field(UF_SCHEMA);
    if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) return false;
    if (u.field_set & (1 << UF_USERINFO)) return false;
    // The authority of an absolute-form target wins over Host (RFC 9112 §3.2.2).
    size_t host_off = u.field_data[UF_HOST].off;
    size_t auth_end = (u.field_set & (1 << UF_PORT))
                          ? u.field_data[UF_PORT].off + u.field_data[UF_PORT].len
                          : host_off + u.field_data[UF_HOST].len;
    if (host_off > 0 && url_[host_off - 1] == '[') --host_off;  // IPv6 literal
    if (auth_end < url_.size() && url_[auth_end] == ']') ++auth_end;
    head_.authority.assign(url_, host_off, auth_end - host_off);
    std::string path((u.field_set & (1 << UF_PATH)) ? field(UF_PATH) : std::string_view("/"));
    if (u.field_set & (1 << UF_QUERY)) path.append("?").append(field(UF_QUERY));
    head_.path = std::move(path);
    return true;
  }

  // ---- the filter and the upstream --------------------------------------------------------

  void OnDecision(uint64_t gen, Decision d) {
    if (finished_ || gen != request_gen_ || req_ != Req::kFilter) return;
    if (!d.forward) {
      local_detail_ = "filter";
      SendLocal(d.status > 0 ? d.status : 403, d.body, d.response_headers, false);
      Drive();
      return;
    }
    if (!ValidForForwarding()) {
      SendLocal(500, "invalid request after filter", {}, false);
      Drive();
      return;
    }
    SerializeRequestHead();
    if (up_.Usable()) {
      StartForwarding();
    } else {
      DropUpstream();
      req_ = Req::kOpen;
      a_.open(
          [self = shared_from_this(), gen](absl::StatusOr<std::unique_ptr<hbone::ByteStream>> s) {
            self->OnUpstream(gen, std::move(s));
          });
    }
    Drive();
  }

  void OnUpstream(uint64_t gen, absl::StatusOr<std::unique_ptr<hbone::ByteStream>> s) {
    if (finished_ || gen != request_gen_ || req_ != Req::kOpen) {
      if (s.ok() && *s) (*s)->Close();
      return;
    }
    if (!s.ok() || !*s) {
      local_detail_ = StrCat("upstream-open: ", s.ok() ? "null stream" : s.status().ToString());
      SendLocal(503, "upstream connect error", {}, false);
    } else {
      up_.stream = std::move(*s);
      ++up_.gen;
      StartForwarding();
    }
    Drive();
  }

  bool ValidForForwarding() const {
    auto bad_text = [](std::string_view s) {
      for (char c : s) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return true;
      }
      return false;
    };
    if (head_.path.empty() || bad_text(head_.path) || !IsValidMethod(head_.method) ||
        !IsValidFieldValue(head_.authority)) {
      return false;
    }
    for (const HttpHeader& h : head_.headers) {
      if (!IsToken(h.name) || !IsValidFieldValue(h.value)) return false;
    }
    return true;
  }

  void SerializeRequestHead() {
    std::string& o = up_head_;
    o.clear();
    o.append(head_.method).append(" ").append(head_.path).append(" HTTP/1.1\r\nhost: ");
    o.append(head_.authority).append(kCrlf);
    for (const HttpHeader& h : head_.headers) {
      if (IsHopByHop(h.name) || EqualsIgnoreCase(h.name, "host") ||
          EqualsIgnoreCase(h.name, "content-length")) {
        continue;
      }
      o.append(h.name).append(": ").append(h.value).append(kCrlf);
    }
    if (req_chunked_) {
      o.append("transfer-encoding: chunked\r\n");
    } else if (req_has_cl_) {
      o.append("content-length: ");
      AppendNumber(o, req_cl_);
      o.append(kCrlf);
    }
    o.append(kCrlf);
  }

  void StartForwarding() {
    req_ = Req::kBody;
    resp_ = Resp::kUpstream;
    http_parser_init(&resp_p_, HTTP_RESPONSE);
    resp_p_.data = this;
    resp_fields_.Reset();
    resp_trailer_fields_.Reset();
    resp_in_trailers_ = false;
    resp_head_sent_ = resp_complete_ = resp_interim_ = false;
    reason_.clear();
    if (expect_continue_ && !down_.writing) {
      down_.Add(kContinue);
      StartWrite(down_);
    }
  }

  // ---- request body -----------------------------------------------------------------------

  bool StepBody() {
    if (up_.writing) return false;
    if (!up_.stream || up_.failed) {
      // The upstream is gone while the request was being sent; what it answered (if anything)
      // is still read. The rest of the request is not read.
      req_ = Req::kDone;
      closing_after_ = true;
      return true;
    }
    if (!up_head_queued_) {
      up_.Add(up_head_);
      up_head_queued_ = true;
    }
    bool progress = false;
    if (!req_complete_ && down_.Unparsed() > 0) {
      size_t parsed = http_parser_execute(&req_p_, &kReqSettings, down_.Data(), down_.Unparsed());
      down_.pos += parsed;
      progress = parsed > 0;
      http_errno err = HTTP_PARSER_ERRNO(&req_p_);
      if (err == HPE_PAUSED) {
        http_parser_pause(&req_p_, 0);
      } else if (err != HPE_OK || trailer_fields_.overflow) {
        return BodyError(StrCat("request body: ", http_errno_name(err)));
      }
    } else if (!req_complete_ && (down_.eof || down_.failed)) {
      http_parser_execute(&req_p_, &kReqSettings, nullptr, 0);
      if (!req_complete_) return BodyError("request body cut by EOF");
    }
    if (req_complete_) {
      if (req_chunked_) {
        up_.Add(up_tail_);
      }
      req_ = Req::kDone;
      progress = true;
    }
    if (!up_.out.empty()) {
      StartWrite(up_);
      progress = true;
    }
    return progress;
  }

  bool BodyError(std::string why) {
    // Part of the request went upstream: that connection cannot be reused.
    up_.out.clear();
    DropUpstream();
    req_ = Req::kDone;
    closing_after_ = true;
    if (resp_ == Resp::kUpstream && !resp_head_sent_) {
      resp_ = Resp::kNone;
      local_detail_ = std::move(why);
      SendLocal(400, "bad request", {}, true);
    } else {
      Abort(why);
    }
    return true;
  }

  bool StepDiscard() {
    if (expect_continue_) {  // the client waits for a 100 that will not come
      req_ = Req::kDone;
      closing_after_ = true;
      return true;
    }
    if (!req_complete_ && down_.Unparsed() > 0) {
      size_t parsed = http_parser_execute(&req_p_, &kReqSettings, down_.Data(), down_.Unparsed());
      down_.pos += parsed;
      discarded_ += parsed;
      http_errno err = HTTP_PARSER_ERRNO(&req_p_);
      if (err == HPE_PAUSED) {
        http_parser_pause(&req_p_, 0);
      } else if (err != HPE_OK) {
        req_ = Req::kDone;
        closing_after_ = true;
        return true;
      }
    } else if (!req_complete_ && (down_.eof || down_.failed)) {
      req_ = Req::kDone;
      closing_after_ = true;
      return true;
    }
    if (req_complete_) {
      req_ = Req::kDone;
      return true;
    }
    if (discarded_ > kMaxDiscard || resp_ == Resp::kDone) {
      // Not worth reading, or the client is still sending after the response: close.
      req_ = Req::kDone;
      closing_after_ = true;
      return true;
    }
    return false;
  }

  // ---- responses --------------------------------------------------------------------------

  bool StepResponse() {
    if (resp_ == Resp::kLocal) {
      if (down_.writing) return false;
      resp_ = Resp::kDone;
      return true;
    }
    if (resp_ != Resp::kUpstream || down_.writing) return false;
    bool progress = false;
    if (!resp_complete_ && up_.Unparsed() > 0) {
      size_t parsed = http_parser_execute(&resp_p_, &kRespSettings, up_.Data(), up_.Unparsed());
      up_.pos += parsed;
      progress = parsed > 0;
      http_errno err = HTTP_PARSER_ERRNO(&resp_p_);
      if (err == HPE_PAUSED) {
        http_parser_pause(&resp_p_, 0);
      } else if (err != HPE_OK || resp_bad_) {
        return ResponseError(
            StrCat("bad upstream response: ", resp_bad_ ? resp_bad_why_ : http_errno_name(err)));
      }
    } else if (!resp_complete_ && (up_.eof || up_.failed || !up_.stream)) {
      if (up_.eof) http_parser_execute(&resp_p_, &kRespSettings, nullptr, 0);
      if (!resp_complete_) {
        return ResponseError(up_.eof ? "upstream closed before the response ended"
                                     : "upstream reset");
      }
    }
    if (resp_complete_ && !resp_final_queued_) {
      resp_final_queued_ = true;
      if (resp_to_client_ == Framing::kChunked) {
        down_.Add(down_tail_);
      }
      if (up_.Unparsed() > 0) up_reusable_ = false;  // bytes after the response: not HTTP
    }
    if (!down_.out.empty()) {
      StartWrite(down_);
      return true;
    }
    if (resp_complete_) {
      resp_ = Resp::kDone;
      return true;
    }
    return progress;
  }

  bool ResponseError(std::string why) {
    up_reusable_ = false;
    DropUpstream();
    if (!resp_head_sent_) {
      down_.out.clear();
      resp_ = Resp::kNone;
      local_detail_ = std::move(why);
      if (req_ == Req::kBody) {
        req_ = Req::kDone;
        closing_after_ = true;
      }
      SendLocal(502, "upstream error", {}, false);
      return true;
    }
    // Part of the response went out: the client must see the connection end, not a shorter
    // response that looks complete.
    Abort(why);
    return true;
  }

  enum class Framing { kNone, kLength, kChunked, kClose };

  int OnRespHeadersComplete() {
    const http_parser& p = resp_p_;
    int status = p.status_code;
    if (status / 100 == 1) {
      if (status == 101) {
        resp_bad_ = true;
        resp_bad_why_ = "101 without an upgrade";
        return -1;
      }
      resp_interim_ = true;  // dropped (100 is answered by the waypoint itself)
      resp_fields_.Reset();
      reason_.clear();
      return 0;
    }
    resp_status_ = status;
    up_reusable_ = http_should_keep_alive(&p) != 0;
    const bool no_body = head_.method == "HEAD" || status == 204 || status == 304;
    const bool chunked = (p.flags & F_CHUNKED) != 0;
    const bool has_cl = p.content_length != ULLONG_MAX && !chunked;
    for (size_t i = 0; i < resp_fields_.n; ++i) {
      if (!IsToken(resp_fields_.slots[i].name)) {
        resp_bad_ = true;
        resp_bad_why_ = "header name";
        return -1;
      }
    }
    Framing f;
    if (no_body) {
      f = Framing::kNone;
    } else if (has_cl) {
      f = Framing::kLength;
    } else if (!http10_) {
      f = Framing::kChunked;
    } else {
      f = Framing::kClose;
    }
    resp_to_client_ = f;
    if (f == Framing::kClose || closing_after_) keep_alive_ = false;

    std::string& o = down_head_;
    o.clear();
    o.append("HTTP/1.1 ");
    AppendNumber(o, static_cast<uint64_t>(status));
    o.append(" ");
    std::string_view reason = TrimOws(reason_);
    o.append(reason.empty() || !IsValidFieldValue(reason) ? ReasonPhrase(status) : reason);
    o.append(kCrlf);
    // Hop-by-hop (and what Connection names) and the framing are this hop's.
    tmp_headers_.resize(resp_fields_.n);
    for (size_t i = 0; i < resp_fields_.n; ++i) {
      tmp_headers_[i].name.swap(resp_fields_.slots[i].name);
      tmp_headers_[i].value.swap(resp_fields_.slots[i].value);
    }
    StripHopByHop(tmp_headers_);
    std::string_view cl_value;
    for (HttpHeader& h : tmp_headers_) {
      if (EqualsIgnoreCase(h.name, "content-length")) {
        cl_value = h.value;
        continue;
      }
      o.append(h.name).append(": ").append(TrimOws(h.value)).append(kCrlf);
    }
    if (f == Framing::kLength || (no_body && !cl_value.empty())) {
      o.append("content-length: ");
      o.append(TrimOws(cl_value));
      o.append(kCrlf);
    } else if (f == Framing::kChunked) {
      o.append("transfer-encoding: chunked\r\n");
    }
    if (!keep_alive_) {
      o.append("connection: close\r\n");
    } else if (http10_) {
      o.append("connection: keep-alive\r\n");
    }
    o.append(kCrlf);
    down_.Add(o);
    resp_head_sent_ = true;
    return no_body ? 1 : 0;
  }

  void OnRespBody(const char* p, size_t n) {
    resp_body_bytes_ += n;
    if (resp_to_client_ == Framing::kChunked) {
      down_.AddChunkSize(n);
      down_.out.emplace_back(p, n);
      down_.Add(kCrlf);
    } else {
      down_.out.emplace_back(p, n);
    }
  }

  void OnRespComplete() {
    if (resp_interim_) {
      resp_interim_ = false;
      return;
    }
    resp_complete_ = true;
    resp_final_queued_ = false;
    BuildTail(down_tail_, resp_trailer_fields_);
    http_parser_pause(&resp_p_, 1);
  }

  // "0\r\n" + trailers + "\r\n" for the end of a chunked body.
  static void BuildTail(std::string& out, const FieldList& trailers) {
    out.assign("0\r\n");
    for (size_t i = 0; i < trailers.n; ++i) {
      const HttpHeader& h = trailers.slots[i];
      if (!IsToken(h.name) || IsHopByHop(h.name) || EqualsIgnoreCase(h.name, "content-length") ||
          EqualsIgnoreCase(h.name, "host")) {
        continue;
      }
      out.append(h.name).append(": ").append(TrimOws(h.value)).append(kCrlf);
    }
    out.append(kCrlf);
  }

  // Answers the current request from here.
  void SendLocal(int status, std::string_view body, const std::vector<HttpHeader>& headers,
                 bool close) {
    if (close || expect_continue_) closing_after_ = true;
    local_ = true;
    resp_status_ = status;
    if (req_ != Req::kDone) req_ = req_complete_ ? Req::kDone : Req::kDiscard;
    keep_alive_ = keep_alive_ && !closing_after_;
    local_out_.clear();
    AppendLocalResponse(local_out_, status, body, headers, !keep_alive_);
    resp_body_bytes_ = body.size();
    resp_ = Resp::kLocal;
    down_.Add(local_out_);
    if (!down_.writing) StartWrite(down_);
  }

  void BadRequest(int status, std::string_view why) {
    Log("http").debug("conn={} {} {}", a_.conn_id, status, why);
    local_detail_ = StrCat("bad-request: ", why);
    req_ = Req::kDone;
    if (!head_started_) BeginRequest();
    SendLocal(status, ReasonPhrase(status), {}, true);
  }

  // ---- between requests ------------------------------------------------------------------

  // Upstream bytes or EOF while no response is expected: that connection is done.
  bool StepUpstreamIdle() {
    if (resp_ == Resp::kUpstream || !up_.stream || down_.writing) return false;
    if (up_.Unparsed() > 0 || up_.eof || up_.failed) {
      if (resp_ == Resp::kNone || resp_ == Resp::kDone || resp_ == Resp::kLocal) {
        if (!up_.writing) {
          DropUpstream();
          return true;
        }
      }
    }
    return false;
  }

  bool StepCycle() {
    if (resp_ == Resp::kDone && req_ != Req::kDone) {
      if (req_ == Req::kBody) {  // the response ended first: the request is abandoned
        up_reusable_ = false;
        req_ = Req::kDone;
        closing_after_ = true;
      } else if (req_ == Req::kFilter || req_ == Req::kOpen) {
        req_ = Req::kDone;
      } else {
        return false;  // kDiscard decides
      }
    }
    if (req_ != Req::kDone || resp_ != Resp::kDone || down_.writing) return false;
    ++requests_;
    Report(local_ ? local_detail_ : std::string());
    if (!up_reusable_ || up_.writing) DropUpstream();
    req_ = Req::kHead;
    resp_ = Resp::kNone;
    head_started_ = false;
    if (closing_after_ || !keep_alive_) {
      StartClose();
      return false;
    }
    return true;
  }

  void Report(const std::string& detail) {
    if (!a_.on_request) return;
    log_.method = head_.method;
    log_.path = head_.path;
    log_.authority = head_.authority;
    log_.h2 = false;
    log_.status = resp_status_;
    log_.local = local_;
    log_.request_body_bytes = req_body_bytes_;
    log_.response_body_bytes = resp_body_bytes_;
    log_.duration =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - head_start_);
    log_.detail = detail;
    a_.on_request(log_);
  }

  void DropUpstream() {
    if (!up_.stream) return;
    up_.stream->Close();
    up_.stream.reset();
    ++up_.gen;
    up_.reading = up_.writing = up_.eof = up_.failed = false;
    up_.out.clear();
    up_.scratch_used = 0;
    up_.pos = up_.end = 0;
    up_reusable_ = true;
  }

  // ---- the end ----------------------------------------------------------------------------

  void StartClose() {
    closing_ = true;
    DropUpstream();
    down_.stream->ShutdownSend();
    lingering_ = true;
    linger_until_ = Clock::now() + kLinger;
    ArmTimer();
  }

  // Drops whatever the client still sends until it closes (or kLinger passes).
  bool Linger() {
    down_.pos = down_.end = 0;
    if (down_.eof || down_.failed) Finish("");
    return false;
  }

  void Abort(std::string_view why) {
    if (head_started_ && req_ != Req::kHead) Report(std::string(why));
    if (down_.stream) down_.stream->Close();
    Finish(why);
  }

  void Finish(std::string_view why) {
    if (finished_) return;
    finished_ = true;
    if (!why.empty()) Log("http").debug("conn={} closed: {}", a_.conn_id, why);
    deadlines_.Cancel();
    DropUpstream();
    if (down_.stream) down_.stream->Close();
  }

  void HandOverToH2() {
    handed_over_ = true;
    finished_ = true;
    deadlines_.Cancel();
    ServeArgs args;
    args.down = std::move(down_.stream);
    args.open = std::move(a_.open);
    args.filter = std::move(a_.filter);
    args.options = a_.options;
    args.on_request = std::move(a_.on_request);
    args.conn_id = a_.conn_id;
    size_t len = down_.end;
    ServeHttp2(std::move(args), std::move(down_.buf), len);
  }

  // ---- timeouts ---------------------------------------------------------------------------

  void ArmTimer() {
    if (finished_) return;
    Clock::time_point next = last_activity_ + a_.options.idle_timeout;
    if (lingering_) next = std::min(next, linger_until_);
    if (req_ == Req::kHead && head_started_) {
      next = std::min(next, head_start_ + a_.options.header_timeout);
    }
    deadlines_.Arm(next, [self = shared_from_this()] { self->OnTimer(); });
  }

  void OnTimer() {
    if (finished_) return;
    Clock::time_point now = Clock::now();
    if (lingering_ && now >= linger_until_) {
      Finish("");
      return;
    }
    if (!lingering_ && req_ == Req::kHead && head_started_ &&
        now >= head_start_ + a_.options.header_timeout) {
      local_detail_ = "header timeout";
      req_ = Req::kDone;
      SendLocal(408, ReasonPhrase(408), {}, true);
      Drive();
      ArmTimer();
      return;
    }
    if (now >= last_activity_ + a_.options.idle_timeout) {
      Abort(lingering_ || !head_started_ ? "" : "idle timeout");
      return;
    }
    ArmTimer();
  }

  // ---- http_parser callbacks --------------------------------------------------------------

  static H1Conn* Of(http_parser* p) { return static_cast<H1Conn*>(p->data); }

  static int ReqUrl(http_parser* p, const char* at, size_t n) {
    Of(p)->url_.append(at, n);
    return 0;
  }
  static int ReqField(http_parser* p, const char* at, size_t n) {
    H1Conn* c = Of(p);
    FieldList& f = c->req_in_trailers_ ? c->trailer_fields_ : c->req_fields_;
    f.OnField(at, n);
    return f.overflow ? -1 : 0;
  }
  static int ReqValue(http_parser* p, const char* at, size_t n) {
    H1Conn* c = Of(p);
    (c->req_in_trailers_ ? c->trailer_fields_ : c->req_fields_).OnValue(at, n);
    return 0;
  }
  static int ReqHeadersComplete(http_parser* p) {
    http_parser_pause(p, 1);
    return 0;
  }
  static int ReqBody(http_parser* p, const char* at, size_t n) {
    H1Conn* c = Of(p);
    c->req_body_bytes_ += n;
    if (c->req_ != Req::kBody) return 0;  // discarded
    if (c->req_chunked_) {
      c->up_.AddChunkSize(n);
      c->up_.out.emplace_back(at, n);
      c->up_.Add(kCrlf);
    } else {
      c->up_.out.emplace_back(at, n);
    }
    return 0;
  }
  static int ReqChunkHeader(http_parser* p) {
    if (p->content_length == 0) Of(p)->req_in_trailers_ = true;
    return 0;
  }
  static int ReqChunkComplete(http_parser* p) {
    if (Of(p)->up_.GatherFull()) http_parser_pause(p, 1);
    return 0;
  }
  static int ReqComplete(http_parser* p) {
    H1Conn* c = Of(p);
    c->req_complete_ = true;
    if (c->req_chunked_) c->BuildTail(c->up_tail_, c->trailer_fields_);
    http_parser_pause(p, 1);
    return 0;
  }

  static int RespStatus(http_parser* p, const char* at, size_t n) {
    Of(p)->reason_.append(at, n);
    return 0;
  }
  static int RespField(http_parser* p, const char* at, size_t n) {
    H1Conn* c = Of(p);
    FieldList& f = c->resp_in_trailers_ ? c->resp_trailer_fields_ : c->resp_fields_;
    f.OnField(at, n);
    if (f.overflow) {
      c->resp_bad_ = true;
      c->resp_bad_why_ = "too many headers";
      return -1;
    }
    return 0;
  }
  static int RespValue(http_parser* p, const char* at, size_t n) {
    H1Conn* c = Of(p);
    (c->resp_in_trailers_ ? c->resp_trailer_fields_ : c->resp_fields_).OnValue(at, n);
    return 0;
  }
  static int RespHeadersComplete(http_parser* p) { return Of(p)->OnRespHeadersComplete(); }
  static int RespBody(http_parser* p, const char* at, size_t n) {
    Of(p)->OnRespBody(at, n);
    return 0;
  }
  static int RespChunkHeader(http_parser* p) {
    if (p->content_length == 0) Of(p)->resp_in_trailers_ = true;
    return 0;
  }
  static int RespChunkComplete(http_parser* p) {
    if (Of(p)->down_.GatherFull()) http_parser_pause(p, 1);
    return 0;
  }
  static int RespComplete(http_parser* p) {
    Of(p)->OnRespComplete();
    return 0;
  }

  static constexpr http_parser_settings kReqSettings = {
      .on_message_begin = nullptr,
      .on_url = ReqUrl,
      .on_status = nullptr,
      .on_header_field = ReqField,
      .on_header_value = ReqValue,
      .on_headers_complete = ReqHeadersComplete,
      .on_body = ReqBody,
      .on_message_complete = ReqComplete,
      .on_chunk_header = ReqChunkHeader,
      .on_chunk_complete = ReqChunkComplete,
  };
  static constexpr http_parser_settings kRespSettings = {
      .on_message_begin = nullptr,
      .on_url = nullptr,
      .on_status = RespStatus,
      .on_header_field = RespField,
      .on_header_value = RespValue,
      .on_headers_complete = RespHeadersComplete,
      .on_body = RespBody,
      .on_message_complete = RespComplete,
      .on_chunk_header = RespChunkHeader,
      .on_chunk_complete = RespChunkComplete,
  };

  // ---- state ------------------------------------------------------------------------------

  ServeArgs a_;
  asio::any_io_executor executor_;
  Deadlines deadlines_;
  Side down_, up_;
  http_parser req_p_{}, resp_p_{};

  bool driving_ = false, again_ = false;
  bool finished_ = false, handed_over_ = false;
  bool closing_ = false;        // no more requests on this connection
  bool closing_after_ = false;  // close once the current response is out
  bool lingering_ = false;
  Clock::time_point linger_until_{};
  Clock::time_point last_activity_{};
  uint64_t requests_ = 0;
  uint64_t request_gen_ = 0;

  // The current request.
  Req req_ = Req::kHead;
  Resp resp_ = Resp::kNone;
  bool head_started_ = false;
  Clock::time_point head_start_{};
  size_t head_bytes_ = 0;
  bool after_lf_ = false, bad_fold_ = false;
  std::string url_;
  FieldList req_fields_, resp_fields_, trailer_fields_, resp_trailer_fields_;
  bool req_in_trailers_ = false, resp_in_trailers_ = false;
  RequestHead head_;
  bool http10_ = false;
  bool keep_alive_ = false;
  bool req_chunked_ = false, req_has_cl_ = false;
  uint64_t req_cl_ = 0;
  bool expect_continue_ = false;
  bool req_complete_ = false;
  bool up_head_queued_ = false;
  uint64_t req_body_bytes_ = 0, resp_body_bytes_ = 0, discarded_ = 0;
  std::string up_head_, up_tail_;

  int resp_status_ = 0;
  bool local_ = false;
  std::string local_detail_;
  std::string reason_;
  bool resp_head_sent_ = false, resp_complete_ = false, resp_final_queued_ = false;
  bool resp_interim_ = false;
  bool resp_bad_ = false;
  std::string resp_bad_why_;
  Framing resp_to_client_ = Framing::kNone;
  bool up_reusable_ = true;
  std::string down_head_, down_tail_, local_out_;
  std::vector<HttpHeader> tmp_headers_;
  RequestLog log_;
};

}  // namespace

void ServeHttp1(ServeArgs args) {
  auto conn = std::make_shared<H1Conn>(std::move(args));
  conn->Start();
}

}  // namespace zm::waypoint::internal

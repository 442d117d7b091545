#include "common/kube/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/cord.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/http/curl.h"
#include "common/kube/json.h"

namespace zm::kube {
namespace {

using nlohmann::json;

spdlog::logger& L() { return Log("kube"); }

using http::CurlEasyPtr;
using http::CurlMultiPtr;
using http::CurlSlistPtr;
using http::InitCurl;

constexpr char kHttpStatusPayload[] = "type.zmesh.io/kube.HttpStatus";
constexpr size_t kMaxBodyBytes = 64 * 1024 * 1024;   // one list page or object
constexpr size_t kMaxEventBytes = 16 * 1024 * 1024;  // one watch event line
constexpr size_t kMaxErrorBodyBytes = 64 * 1024;     // the Status of a refused watch
constexpr size_t kMaxIdleHandles = 4;

absl::StatusCode CodeOfHttp(long status) {
  switch (status) {
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAlreadyExists;
    case 410:
      return absl::StatusCode::kOutOfRange;  // resourceVersion or continue too old
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 500:
      return absl::StatusCode::kInternal;
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

// At most `n` bytes of `s`, for error texts.
std::string Excerpt(std::string_view s, size_t n = 200) {
  if (s.size() <= n) return std::string(s);
  return StrCat(s.substr(0, n), "... (", s.size(), " bytes)");
}

// The message of a v1 Status body ("pods \"x\" not found"), else an excerpt of the body.
std::string ApiMessage(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    std::string message = StringField(j, "message");
    if (!message.empty()) return message;
    std::string reason = StringField(j, "reason");
    if (!reason.empty()) return reason;
  }
  std::string text = Excerpt(body);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// `reason` is the phrase of the server's status line ("Not Found").
absl::Status HttpError(std::string_view verb, std::string_view url, long status,
                       std::string_view reason, std::string_view body) {
  std::string message = StrCat(verb, " ", url, ": HTTP ", status);
  if (!reason.empty()) message += StrCat(" ", reason);
  if (std::string api = ApiMessage(body); !api.empty()) message += StrCat(": ", api);
  absl::Status st(CodeOfHttp(status), message);
  st.SetPayload(kHttpStatusPayload, absl::Cord(std::to_string(status)));
  return st;
}

bool IsTlsError(CURLcode c) {
  return c == CURLE_PEER_FAILED_VERIFICATION || c == CURLE_SSL_CONNECT_ERROR ||
         c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CACERT_BADFILE || c == CURLE_SSL_CIPHER ||
         c == CURLE_SSL_ISSUER_ERROR || c == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

// Percent-encoding of a query value (RFC 3986 unreserved characters stay).
std::string QueryEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

// "path?k=v&..." from the non-empty values.
std::string WithQuery(std::string_view path,
                      std::initializer_list<std::pair<std::string_view, std::string>> params) {
  std::string out(path);
  char sep = out.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    out += StrCat(sep, key, "=", QueryEscape(value));
    sep = '&';
  }
  return out;
}

// Splits the body of a watch into lines and each line into an event.
class WatchParser {
 public:
  explicit WatchParser(const WatchCallback& on_event) : on_event_(on_event) {}

  // Takes body bytes as libcurl hands them over; false stops the transfer.
  bool Feed(long http_status, std::string_view data) {
    if (http_status != 200) {
      // A refused watch: keep its Status body for the error.
      error_body_.append(
          data.substr(0, kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, error_body_.size())));
      return true;
    }
    buffer_.append(data);
    size_t start = 0;
    for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!Line(std::string_view(buffer_).substr(start, nl - start))) return false;
    }
    buffer_.erase(0, start);
    if (buffer_.size() > kMaxEventBytes) {
      return Stop(WatchEnd::kBadEvent,
                  StrCat("a watch event longer than ", kMaxEventBytes, " bytes"));
    }
    return true;
  }

  int64_t events() const { return events_; }
  const std::string& error_body() const { return error_body_; }
  size_t partial_bytes() const { return buffer_.size(); }
  const std::optional<std::pair<WatchEnd, std::string>>& stopped() const { return stopped_; }

 private:
  bool Stop(WatchEnd end, std::string why) {
    stopped_.emplace(end, std::move(why));
    return false;
  }

  bool Line(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) return true;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Stop(WatchEnd::kBadEvent,
                  StrCat("a watch line is not a JSON object: ", Excerpt(line)));
    }
    const std::string type = StringField(j, "type");
    auto object = j.find("object");
    const bool has_object = object != j.end() && object->is_object();
    if (type == "ERROR") {
      if (!has_object) return Stop(WatchEnd::kError, "ERROR watch event without a Status");
      const json* code = Field(*object, "code");
      const int64_t n = code != nullptr && code->is_number_integer() ? code->get<int64_t>() : 0;
      std::string why = StrCat("ERROR watch event: code ", n, " ", StringField(*object, "reason"),
                               ": ", StringField(*object, "message"));
      return Stop(n == 410 ? WatchEnd::kGone : WatchEnd::kError, std::move(why));
    }
    EventType t;
    if (type == "ADDED") {
      t = EventType::kAdded;
    } else if (type == "MODIFIED") {
      t = EventType::kModified;
    } else if (type == "DELETED") {
      t = EventType::kDeleted;
    } else if (type == "BOOKMARK") {
      t = EventType::kBookmark;
    } else {
      return Stop(WatchEnd::kBadEvent,
                  StrCat("unknown watch event type \"", Excerpt(type, 40), "\": ", Excerpt(line)));
    }
    if (!has_object) {
      return Stop(WatchEnd::kBadEvent,
                  StrCat(type, " watch event without an object: ", Excerpt(line)));
    }
    ++events_;
    on_event_(WatchEvent{.type = t, .object = std::move(*object)});
    return true;
  }

  const WatchCallback& on_event_;
  std::string buffer_;
  std::string error_body_;
  int64_t events_ = 0;
  std::optional<std::pair<WatchEnd, std::string>> stopped_;
};

}  // namespace

struct KubeClient::Handle {
  CurlMultiPtr multi;
  CurlEasyPtr easy;
};

struct KubeClient::Request {
  std::string_view verb;
  std::string path_query;
  const std::string* body = nullptr;
  std::string_view content_type;
  std::chrono::milliseconds timeout{0};
  Cancellation* cancel = nullptr;
  // Streaming: the body as it arrives, with the HTTP status; false aborts the transfer.
  // Without it the body is collected in Response::body.
  std::function<bool(long status, std::string_view data)> sink;
};

struct KubeClient::Response {
  std::string url;
  long status = 0;     // 0: no HTTP answer
  std::string reason;  // of the (last) status line
  std::string body;    // without a sink
  absl::Status error;  // the exchange did not complete (transport, TLS, token, cancelled)
  bool cancelled = false;
};

namespace {

struct WriteState {
  const KubeClient::Request* request;
  KubeClient::Response* response;
  CURL* easy;
  bool too_large = false;
};

// Keeps the reason phrase of the status line ("HTTP/1.1 404 Not Found").
size_t HeaderCallback(char* data, size_t size, size_t n, void* user) {
  auto* resp = static_cast<KubeClient::Response*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    resp->reason.clear();
    size_t code = line.find(' ');
    size_t phrase = code == std::string_view::npos ? code : line.find(' ', code + 1);
    if (phrase != std::string_view::npos) {
      std::string_view r = line.substr(phrase + 1);
      while (!r.empty() && (r.back() == '\n' || r.back() == '\r')) r.remove_suffix(1);
      resp->reason = std::string(r.substr(0, 64));
    }
  }
  return size * n;
}

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  auto* ws = static_cast<WriteState*>(user);
  const size_t len = size * n;
  if (!ws->request->sink) {
    if (ws->response->body.size() + len > kMaxBodyBytes) {
      ws->too_large = true;
      return 0;
    }
    ws->response->body.append(data, len);
    return len;
  }
  long status = 0;
  curl_easy_getinfo(ws->easy, CURLINFO_RESPONSE_CODE, &status);
  return ws->request->sink(status, std::string_view(data, len)) ? len : 0;
}

}  // namespace

std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
    case EventType::kBookmark:
      return "BOOKMARK";
  }
  return "?";
}

std::string_view WatchEndName(WatchEnd end) {
  switch (end) {
    case WatchEnd::kClosed:
      return "closed";
    case WatchEnd::kGone:
      return "gone";
    case WatchEnd::kError:
      return "error";
    case WatchEnd::kBroken:
      return "broken";
    case WatchEnd::kBadEvent:
      return "bad event";
    case WatchEnd::kCancelled:
      return "cancelled";
  }
  return "?";
}

int HttpStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kHttpStatusPayload);
  if (!payload) return 0;
  int n = 0;
  for (char c : std::string(*payload)) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(Config config,
                                                               ClientOptions options) {
  ZM_RETURN_IF_ERROR(InitCurl());
  while (config.server.ends_with("/")) config.server.pop_back();
  const bool plain = config.server.starts_with("http://");
  if (!plain && !config.server.starts_with("https://")) {
    return absl::InvalidArgumentError(StrCat(config.source.empty() ? "config" : config.source,
                                             ": server is not an http(s) URL: \"", config.server,
                                             "\""));
  }
  if (options.clock == nullptr) options.clock = &SystemClock::Get();
  std::unique_ptr<KubeClient> client(new KubeClient(std::move(config), std::move(options)));
  // A token file that cannot be read fails now, not on the first request.
  ZM_RETURN_IF_ERROR(client->token_.Get().status());
  const Config& c = client->config_;
  if (plain && (!c.token.empty() || !c.token_file.empty())) {
    L().warn("{}: the bearer token goes to {} unencrypted", c.source, c.server);
  }
  if (c.insecure_skip_tls_verify) {
    L().warn("{}: the server's certificate is not verified (insecure-skip-tls-verify)", c.source);
  }
  return client;
}

KubeClient::KubeClient(Config config, ClientOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      token_(config_.token, config_.token_file, *options_.clock) {}

KubeClient::~KubeClient() = default;

std::unique_ptr<KubeClient::Handle> KubeClient::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->multi.reset(curl_multi_init());
  h->easy.reset(curl_easy_init());
  if (!h->multi || !h->easy) return nullptr;
  return h;
}

void KubeClient::Release(std::unique_ptr<Handle> handle) {
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(handle));
}

KubeClient::Response KubeClient::Perform(const Request& req) {
  Response resp;
  resp.url = config_.server + req.path_query;
  const std::string what = StrCat(req.verb, " ", resp.url);
  auto token = token_.Get();
  if (!token.ok()) {
    resp.error = absl::Status(token.status().code(), StrCat(what, ": ", token.status().message()));
    return resp;
  }
  std::unique_ptr<Handle> h = Acquire();
  if (!h) {
    resp.error = absl::ResourceExhaustedError(StrCat(what, ": cannot create a libcurl handle"));
    return resp;
  }
  CURL* e = h->easy.get();
  CURLM* m = h->multi.get();
  curl_easy_reset(e);

  CurlSlistPtr headers;
  bool headers_ok = true;
  auto add_header = [&headers, &headers_ok](const std::string& line) {
    curl_slist* n = curl_slist_append(headers.get(), line.c_str());
    if (n == nullptr) {
      headers_ok = false;
      return;
    }
    (void)headers.release();
    headers.reset(n);
  };
  add_header("Accept: application/json");
  add_header("Expect:");  // no 100-continue round trip for bodies
  if (!token->empty()) add_header(StrCat("Authorization: Bearer ", *token));
  if (req.body != nullptr) add_header(StrCat("Content-Type: ", req.content_type));
  if (!headers_ok) {
    resp.error = absl::ResourceExhaustedError(StrCat(what, ": out of memory for headers"));
    return resp;
  }

  char errbuf[CURL_ERROR_SIZE] = {0};
  WriteState ws{.request = &req, .response = &resp, .easy = e};
  curl_easy_setopt(e, CURLOPT_URL, resp.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &ws);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HeaderCallback);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &resp);
  if (req.body == nullptr) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    // libcurl copies string options.
    if (req.verb != "POST") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, std::string(req.verb).c_str());
    }
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body->size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body->data());
  }
  if (config_.insecure_skip_tls_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.ca_file.empty()) {
    curl_easy_setopt(e, CURLOPT_CAINFO, config_.ca_file.c_str());
  } else if (!config_.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!config_.client_cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, config_.client_cert_file.c_str());
  } else if (!config_.client_cert_pem.empty()) {
    curl_blob blob{const_cast<char*>(config_.client_cert_pem.data()),
                   config_.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
  }
  if (!config_.client_key_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLKEY, config_.client_key_file.c_str());
  } else if (!config_.client_key_pem.empty()) {
    curl_blob blob{const_cast<char*>(config_.client_key_pem.data()), config_.client_key_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
  }
  if (!config_.client_cert_file.empty() || !config_.client_cert_pem.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }

  CURLcode result = CURLE_OK;
  if (CURLMcode mc = curl_multi_add_handle(m, e); mc != CURLM_OK) {
    resp.error =
        absl::InternalError(StrCat(what, ": curl_multi_add_handle: ", curl_multi_strerror(mc)));
    return resp;
  }
  {
    Cancellation::Registration wake;
    if (req.cancel != nullptr) wake = req.cancel->OnCancel([m] { curl_multi_wakeup(m); });
    bool done = false;
    while (!done) {
      if (req.cancel != nullptr && req.cancel->cancelled()) {
        resp.cancelled = true;
        break;
      }
      int running = 0;
      CURLMcode mc = curl_multi_perform(m, &running);
      if (mc == CURLM_OK) {
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(m, &queued)) {
          if (msg->msg == CURLMSG_DONE) {
            result = msg->data.result;
            done = true;
          }
        }
        if (done) break;
        mc = curl_multi_poll(m, nullptr, 0, 1000, nullptr);
      }
      if (mc != CURLM_OK) {
        resp.error = absl::InternalError(StrCat(what, ": libcurl: ", curl_multi_strerror(mc)));
        break;
      }
    }
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_multi_remove_handle(m, e);
  // No option may point into this frame (error buffer, headers, body) once it returns; the
  // connection stays cached in the multi handle.
  curl_easy_reset(e);
  Release(std::move(h));

  if (resp.status == 401) token_.Invalidate();  // maybe rotated: read it again next time
  if (resp.cancelled) {
    resp.error = absl::CancelledError(StrCat(what, ": cancelled"));
  } else if (resp.error.ok() && ws.too_large) {
    resp.error = absl::ResourceExhaustedError(
        StrCat(what, ": answer larger than ", kMaxBodyBytes, " bytes"));
  } else if (resp.error.ok() && result != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(result);
    if (IsTlsError(result)) {
      std::string ca = !config_.ca_file.empty()  ? StrCat("CA bundle ", config_.ca_file)
                       : !config_.ca_pem.empty() ? std::string("the CA data of ") + config_.source
                                                 : std::string("the system trust store");
      detail = StrCat("TLS: ", detail, " (server certificate checked against ", ca, ")");
    }
    resp.error =
        absl::Status(result == CURLE_OPERATION_TIMEDOUT ? absl::StatusCode::kDeadlineExceeded
                                                        : absl::StatusCode::kUnavailable,
                     StrCat(what, ": ", detail));
  }
  return resp;
}

absl::StatusOr<json> KubeClient::JsonCall(std::string_view verb, const std::string& path_query,
                                          const std::string* body, std::string_view content_type,
                                          Cancellation* cancel) {
  Request req{.verb = verb,
              .path_query = path_query,
              .body = body,
              .content_type = content_type,
              .timeout = options_.request_timeout,
              .cancel = cancel};
  Response resp = Perform(req);
  if (!resp.error.ok()) return resp.error;
  if (resp.status < 200 || resp.status > 299)
    return HttpError(verb, resp.url, resp.status, resp.reason, resp.body);
  json j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(StrCat(verb, " ", resp.url, ": HTTP ", resp.status,
                                      ": the answer is not a JSON object: ", Excerpt(resp.body)));
  }
  return j;
}

absl::StatusOr<ListResult> KubeClient::List(std::string_view path, const ListOptions& options) {
  ListResult out;
  std::string cont;
  bool restarted = false;
  while (true) {
    const std::string pq =
        WithQuery(path, {{"limit", options.page_size > 0 ? std::to_string(options.page_size) : ""},
                         {"continue", cont},
                         {"labelSelector", options.label_selector},
                         {"fieldSelector", options.field_selector}});
    auto page = JsonCall("GET", pq, nullptr, "", options.cancel);
    if (!page.ok() && HttpStatusOf(page.status()) == 410 && !cont.empty() && !restarted) {
      // The continue token expired between pages: start again, once.
      L().info("GET {}: continue token expired, listing again from the start", path);
      restarted = true;
      cont.clear();
      out = ListResult{};
      continue;
    }
    if (!page.ok()) return page.status();
    const json* items = Field(*page, "items");
    if (items != nullptr && !items->is_null() && !items->is_array()) {
      return absl::DataLossError(StrCat("GET ", config_.server, pq, ": items is not a list"));
    }
    if (out.resource_version.empty()) out.resource_version = MetaField(*page, "resourceVersion");
    if (items != nullptr && items->is_array()) {
      for (auto& item : *items) out.items.push_back(std::move(item));
    }
    cont = MetaField(*page, "continue");
    if (cont.empty()) return out;
  }
}

WatchResult KubeClient::Watch(std::string_view path, const WatchOptions& options,
                              const WatchCallback& on_event) {
  const std::string pq =
      WithQuery(path, {{"watch", "true"},
                       {"resourceVersion", options.resource_version},
                       {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
                       {"timeoutSeconds", std::to_string(options.timeout.count())},
                       {"labelSelector", options.label_selector},
                       {"fieldSelector", options.field_selector}});
  WatchParser parser(on_event);
  Request req{
      .verb = "GET",
      .path_query = pq,
      .timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout +
                                                                       options_.watch_grace),
      .cancel = options.cancel,
      .sink = [&parser](long status, std::string_view data) { return parser.Feed(status, data); }};
  Response resp = Perform(req);
  WatchResult r;
  r.events = parser.events();
  const std::string what = StrCat("GET ", resp.url);
  if (resp.cancelled) {
    r.end = WatchEnd::kCancelled;
    r.status = resp.error;
  } else if (parser.stopped()) {
    r.end = parser.stopped()->first;
    r.status = absl::Status(r.end == WatchEnd::kGone    ? absl::StatusCode::kOutOfRange
                            : r.end == WatchEnd::kError ? absl::StatusCode::kUnavailable
                                                        : absl::StatusCode::kDataLoss,
                            StrCat(what, ": ", parser.stopped()->second));
    if (r.end == WatchEnd::kGone) r.status.SetPayload(kHttpStatusPayload, absl::Cord("410"));
  } else if (resp.status != 0 && resp.status != 200) {
    r.end = resp.status == 410 ? WatchEnd::kGone : WatchEnd::kError;
    r.status = HttpError("GET", resp.url, resp.status, resp.reason, parser.error_body());
  } else if (!resp.error.ok()) {
    r.end = resp.status == 200 ? WatchEnd::kBroken : WatchEnd::kError;
    r.status = resp.error;
  } else if (parser.partial_bytes() > 0) {
    r.end = WatchEnd::kBroken;
    r.status = absl::DataLossError(StrCat(what, ": the stream ended inside an event (",
                                          parser.partial_bytes(), " bytes without a newline)"));
  } else {
    r.end = WatchEnd::kClosed;
  }
  return r;
}

absl::StatusOr<json> KubeClient::Get(std::string_view path) {
  return JsonCall("GET", std::string(path), nullptr, "", nullptr);
}

absl::StatusOr<json> KubeClient::Create(std::string_view path, const json& object) {
  const std::string body = Dump(object);
  return JsonCall("POST", std::string(path), &body, "application/json", nullptr);
}

absl::StatusOr<json> KubeClient::Patch(std::string_view path, const json& merge_patch) {
  const std::string body = Dump(merge_patch);
  return JsonCall("PATCH", std::string(path), &body, "application/merge-patch+json", nullptr);
}

absl::StatusOr<TokenReviewResult> ReviewToken(KubeApi& api, std::string_view token,
                                              const std::vector<std::string>& audiences) {
  static constexpr char kPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";
  json spec = {{"token", std::string(token)}};
  if (!audiences.empty()) spec["audiences"] = audiences;
  const json review = {{"apiVersion", "authentication.k8s.io/v1"},
                       {"kind", "TokenReview"},
                       {"spec", std::move(spec)}};
  ZM_ASSIGN_OR_RETURN(json answer, api.Create(kPath, review));
  const json* status = Field(answer, "status");
  if (status == nullptr || !status->is_object()) {
    return absl::DataLossError(StrCat("POST ", kPath, ": the TokenReview answer has no status"));
  }
  auto strings = [](const json* list) {
    std::vector<std::string> out;
    if (list == nullptr || !list->is_array()) return out;
    for (const json& s : *list) {
      if (s.is_string()) out.push_back(s.get<std::string>());
    }
    return out;
  };
  TokenReviewResult r;
  const json* authenticated = Field(*status, "authenticated");
  r.authenticated =
      authenticated != nullptr && authenticated->is_boolean() && authenticated->get<bool>();
  r.error = StringField(*status, "error");
  r.audiences = strings(Field(*status, "audiences"));
  if (const json* user = Field(*status, "user"); user != nullptr) {
    r.username = StringField(*user, "username");
    r.uid = StringField(*user, "uid");
    r.groups = strings(Field(*user, "groups"));
    if (const json* extra = Field(*user, "extra"); extra != nullptr && extra->is_object()) {
      for (const auto& [key, values] : extra->items()) r.extra[key] = strings(&values);
    }
  }
  return r;
}

}  // namespace zm::kube

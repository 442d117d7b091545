#include "tests/testutil/fake_kube_apiserver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

#include "common/base/clock.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/tls/ca.h"
#include "common/tls/csr.h"
#include "common/tls/ossl.h"
#include "common/tls/pem.h"
#include "common/tls/spiffe.h"
#include "tests/testutil/temp_dir.h"

namespace zm::testutil {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// TestPki

TestPki::~TestPki() = default;
TestPki::TestPki(TestPki&&) noexcept = default;
TestPki& TestPki::operator=(TestPki&&) noexcept = default;

absl::StatusOr<TestPki> TestPki::Create() {
  TempDir dir("zmesh-kube-pki");
  auto ca = tls::CertificateAuthority::LoadOrCreate(dir.File("ca.pem"), dir.File("ca-key.pem"),
                                                    "cluster.local", SystemClock::Get());
  if (!ca.ok()) return ca.status();
  TestPki pki;
  pki.ca_ = std::make_unique<tls::CertificateAuthority>(*std::move(ca));
  pki.ca_pem_ = pki.ca_->RootPem();
  ZM_ASSIGN_OR_RETURN(tls::EvpPkeyPtr key, tls::GenerateEcP256Key());
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> chain,
                      pki.ca_->SignServer(key.get(), {"localhost"}, std::chrono::hours(24)));
  for (const std::string& pem : chain) pki.server_chain_pem_ += pem;
  ZM_ASSIGN_OR_RETURN(pki.server_key_pem_, tls::PrivateKeyToPem(key.get()));
  return pki;
}

absl::StatusOr<std::pair<std::string, std::string>> TestPki::MintClient(std::string_view ns,
                                                                        std::string_view sa) const {
  ZM_ASSIGN_OR_RETURN(tls::SpiffeId id, tls::SpiffeId::ForServiceAccount("cluster.local", ns, sa));
  ZM_ASSIGN_OR_RETURN(tls::EvpPkeyPtr key, tls::GenerateEcP256Key());
  ZM_ASSIGN_OR_RETURN(std::string csr, tls::BuildCsr(key.get(), id));
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> chain, ca_->Sign(csr, id, std::chrono::hours(1)));
  std::string chain_pem;
  for (const std::string& pem : chain) chain_pem += pem;
  ZM_ASSIGN_OR_RETURN(std::string key_pem, tls::PrivateKeyToPem(key.get()));
  return std::make_pair(std::move(chain_pem), std::move(key_pem));
}

// ---------------------------------------------------------------------------------------------
// Wire helpers

namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 16 * 1024 * 1024;
constexpr std::chrono::milliseconds kPeerCheck{20};

struct ResourceDef {
  std::string_view api_version, kind, plural;
  bool namespaced;
  bool builtin;  // list items without kind/apiVersion
};

// What this fake serves, written from the API's documentation (not from common/kube's table,
// which it tests).
constexpr ResourceDef kResources[] = {
    {"v1", "Namespace", "namespaces", false, true},
    {"v1", "Pod", "pods", true, true},
    {"v1", "Service", "services", true, true},
    {"v1", "Secret", "secrets", true, true},
    {"discovery.k8s.io/v1", "EndpointSlice", "endpointslices", true, true},
    {"security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies", true, false},
    {"security.istio.io/v1", "PeerAuthentication", "peerauthentications", true, false},
    {"security.istio.io/v1", "RequestAuthentication", "requestauthentications", true, false},
};
constexpr int kResourceCount = static_cast<int>(std::size(kResources));

int FindResource(std::string_view api_version, std::string_view kind) {
  for (int i = 0; i < kResourceCount; ++i) {
    if (kResources[i].api_version == api_version && kResources[i].kind == kind) return i;
  }
  return -1;
}

std::string Str(const json& j, std::string_view key) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string Meta(const json& j, std::string_view key) {
  auto it = j.is_object() ? j.find("metadata") : j.end();
  return it != j.end() ? Str(*it, key) : std::string();
}

std::string Key(const ResourceDef& r, const std::string& ns, const std::string& name) {
  return r.namespaced ? StrCat(ns, "/", name) : name;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json StatusBody(int code, std::string_view reason, std::string_view message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

std::string_view Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size()) {
      int v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
      } else {
        out.push_back(s[i]);
      }
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Chunk(std::string_view data) {
  return StrCat(fmt::format("{:x}", data.size()), "\r\n", data, "\r\n");
}

}  // namespace

struct FakeKubeApiServer::HttpRequest {
  std::string method;
  std::string target;
  std::string path;
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string Query(const std::string& k) const {
    auto it = query.find(k);
    return it == query.end() ? "" : it->second;
  }
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

// One accepted connection, plain or TLS, used by one thread.
class FakeKubeApiServer::Conn {
 public:
  Conn(int fd, SSL_CTX* ctx) : fd_(fd) {
    if (ctx != nullptr) ssl_.reset(SSL_new(ctx));
  }
  bool Handshake() {
    if (!ssl_) return true;
    if (SSL_set_fd(ssl_.get(), fd_) != 1) return false;
    const bool ok = SSL_accept(ssl_.get()) == 1;
    if (!ok) tls::ClearOpenSslErrors();
    return ok;
  }
  ssize_t Read(char* buf, size_t n) {
    if (ssl_) {
      int r = SSL_read(ssl_.get(), buf, static_cast<int>(n));
      if (r <= 0) tls::ClearOpenSslErrors();
      return r;
    }
    while (true) {
      ssize_t r = ::recv(fd_, buf, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r;
    }
  }
  bool Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t r;
      if (ssl_) {
        r = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
        if (r <= 0) {
          tls::ClearOpenSslErrors();
          return false;
        }
      } else {
        r = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
      }
      data.remove_prefix(static_cast<size_t>(r));
    }
    return true;
  }
  // Cuts the connection without a clean end (no TLS close_notify, no final chunk).
  void Cut() { ::shutdown(fd_, SHUT_RDWR); }
  // The client has gone (closed or shut down its side), as a real server notices.
  bool PeerClosed() const {
    pollfd p{.fd = fd_, .events = POLLRDHUP, .revents = 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  }

  // The next request, or nullopt at the end of the connection (or after answering 400).
  std::optional<HttpRequest> ReadRequest() {
    size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (buf_.size() > kMaxHeadBytes || !Fill()) return std::nullopt;
    }
    HttpRequest req;
    std::vector<std::string> lines = Split(std::string_view(buf_).substr(0, head_end), '\n');
    for (std::string& l : lines) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
    }
    std::vector<std::string> start = Split(lines[0], ' ');
    if (start.size() != 3 || !start[2].starts_with("HTTP/1.")) return BadRequest();
    req.method = start[0];
    req.target = start[1];
    for (size_t i = 1; i < lines.size(); ++i) {
      size_t colon = lines[i].find(':');
      if (colon == std::string::npos) return BadRequest();
      std::string value = lines[i].substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      req.headers[Lower(lines[i].substr(0, colon))] = value;
    }
    buf_.erase(0, head_end + 4);
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) {
      for (const std::string& kv : Split(std::string_view(req.target).substr(q + 1), '&')) {
        if (kv.empty()) continue;
        size_t eq = kv.find('=');
        req.query[PercentDecode(kv.substr(0, eq))] =
            eq == std::string::npos ? "" : PercentDecode(kv.substr(eq + 1));
      }
    }
    if (!req.Header("transfer-encoding").empty()) return BadRequest();
    size_t length = 0;
    if (std::string cl = req.Header("content-length"); !cl.empty()) {
      auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
      if (ec != std::errc() || p != cl.data() + cl.size() || length > kMaxBodyBytes) {
        return BadRequest();
      }
    }
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    req.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return req;
  }

 private:
  bool Fill() {
    char tmp[16384];
    ssize_t n = Read(tmp, sizeof(tmp));
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  std::optional<HttpRequest> BadRequest() {
    std::string body = Dump(StatusBody(400, "BadRequest", "malformed HTTP request"));
    Write(StrCat("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ",
                 body.size(), "\r\nConnection: close\r\n\r\n", body));
    return std::nullopt;
  }

  int fd_;
  tls::SslPtr ssl_;
  std::string buf_;
};

bool FakeKubeApiServer::Respond(Conn& conn, int status, const json& body) {
  std::string text = Dump(body);
  return conn.Write(StrCat("HTTP/1.1 ", status, " ", Reason(status),
                           "\r\nContent-Type: application/json\r\nContent-Length: ", text.size(),
                           "\r\n\r\n", text));
}

bool FakeKubeApiServer::RespondStatus(Conn& conn, int code, std::string_view reason,
                                      std::string_view message) {
  return Respond(conn, code, StatusBody(code, reason, message));
}

// ---------------------------------------------------------------------------------------------
// Server

FakeKubeApiServer::FakeKubeApiServer(Options options)
    : options_(std::move(options)), token_(options_.token), objects_(kResourceCount) {
  token_review_ = [](const json&) {
    return json{{"authenticated", false}, {"error", "fake: no TokenReview handler set"}};
  };
}

FakeKubeApiServer::~FakeKubeApiServer() { Stop(); }

std::string FakeKubeApiServer::url() const {
  return options_.tls != nullptr ? StrCat("https://localhost:", port_)
                                 : StrCat("http://127.0.0.1:", port_);
}

absl::Status FakeKubeApiServer::Start() {
  if (options_.tls != nullptr) {
    tls::SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return tls::OpenSslError("SSL_CTX_new");
    ZM_ASSIGN_OR_RETURN(std::vector<tls::X509Ptr> chain,
                        tls::CertsFromPem(options_.tls->server_chain_pem(), "server chain"));
    ZM_ASSIGN_OR_RETURN(tls::EvpPkeyPtr key,
                        tls::PrivateKeyFromPem(options_.tls->server_key_pem(), "server key"));
    if (SSL_CTX_use_certificate(ctx.get(), chain[0].get()) != 1) {
      return tls::OpenSslError("SSL_CTX_use_certificate");
    }
    for (size_t i = 1; i < chain.size(); ++i) {
      if (SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get()) != 1) {
        return tls::OpenSslError("SSL_CTX_add1_chain_cert");
      }
    }
    if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
      return tls::OpenSslError("SSL_CTX_use_PrivateKey");
    }
    if (options_.require_client_cert) {
      ZM_ASSIGN_OR_RETURN(std::vector<tls::X509Ptr> roots,
                          tls::CertsFromPem(options_.tls->ca_pem(), "client CA"));
      for (const auto& root : roots)
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), root.get());
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    ssl_ctx_ = std::move(ctx);
  }
  listener_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener_) return ErrnoError("socket", "fake apiserver");
  int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(options_.port);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError("bind", StrCat("127.0.0.1:", options_.port));
  }
  if (::listen(listener_.get(), 64) != 0) return ErrnoError("listen", "fake apiserver");
  socklen_t len = sizeof(addr);
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void FakeKubeApiServer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (listener_) ::shutdown(listener_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(conns_mu_);
    for (int fd : conn_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(conn_threads_);
  }
  for (std::thread& t : threads) t.join();
  listener_.reset();
}

void FakeKubeApiServer::AcceptLoop() {
  // A peer that went away makes writes fail with EPIPE instead of killing the test (OpenSSL
  // writes with write(2)); the connection threads inherit the mask.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (true) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    std::lock_guard lock(conns_mu_);
    {
      std::lock_guard state(mu_);
      if (stopping_) {
        ::close(fd);
        return;
      }
    }
    conn_fds_.insert(fd);
    conn_threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeKubeApiServer::Serve(int fd) {
  {
    Conn conn(fd, ssl_ctx_.get());
    if (conn.Handshake()) {
      while (auto req = conn.ReadRequest()) {
        {
          std::lock_guard lock(mu_);
          requests_.push_back(Request{.method = req->method,
                                      .target = req->target,
                                      .authorization = req->Header("authorization"),
                                      .content_type = req->Header("content-type"),
                                      .body = req->body});
        }
        if (!Handle(conn, *req)) break;
      }
    }
  }
  std::lock_guard lock(conns_mu_);
  conn_fds_.erase(fd);
  ::close(fd);
}

bool FakeKubeApiServer::Handle(Conn& conn, const HttpRequest& req) {
  {
    std::unique_lock lock(mu_);
    if (delay_.count() > 0) cv_.wait_for(lock, delay_, [this] { return stopping_; });
    if (stopping_) return false;
    if (!token_.empty() && req.Header("authorization") != StrCat("Bearer ", token_)) {
      lock.unlock();
      return RespondStatus(conn, 401, "Unauthorized", "Unauthorized");
    }
    if (fail_count_ != 0) {
      if (fail_count_ > 0) --fail_count_;
      const int status = fail_status_;
      lock.unlock();
      return RespondStatus(conn, status, "InternalError", "fake: injected failure");
    }
  }
  if (options_.control_endpoints && req.path.starts_with("/fake/")) return HandleControl(conn, req);
  if (req.path == "/apis/authentication.k8s.io/v1/tokenreviews") {
    if (req.method != "POST") return RespondStatus(conn, 405, "MethodNotAllowed", "POST only");
    json review = json::parse(req.body, nullptr, false);
    if (review.is_discarded() || !review.is_object() || !review.contains("spec")) {
      return RespondStatus(conn, 400, "BadRequest", "not a TokenReview");
    }
    std::function<json(const json&)> handler;
    {
      std::lock_guard lock(mu_);
      handler = token_review_;
    }
    review["status"] = handler(review["spec"]);
    return Respond(conn, 201, review);
  }
  // /api/v1/... or /apis/<group>/<version>/...
  std::vector<std::string> segs = Split(req.path, '/');
  if (segs.size() < 2 || !segs[0].empty()) return RespondStatus(conn, 404, "NotFound", "not found");
  segs.erase(segs.begin());
  for (int i = 0; i < kResourceCount; ++i) {
    const ResourceDef& r = kResources[i];
    std::vector<std::string> prefix =
        r.api_version == "v1"
            ? std::vector<std::string>{"api", "v1"}
            : std::vector<std::string>{
                  "apis", std::string(r.api_version.substr(0, r.api_version.find('/'))),
                  std::string(r.api_version.substr(r.api_version.find('/') + 1))};
    if (segs.size() < prefix.size() || !std::equal(prefix.begin(), prefix.end(), segs.begin())) {
      continue;
    }
    std::vector<std::string> rest(segs.begin() + static_cast<long>(prefix.size()), segs.end());
    if (rest.size() >= 1 && rest.size() <= 2 && rest[0] == r.plural) {
      // All namespaces, or a cluster-scoped object.
      if (rest.size() == 2 && r.namespaced) continue;
      return HandleResource(conn, req, i, "", rest.size() == 2 ? rest[1] : "", rest.size() == 1);
    }
    if (r.namespaced && (rest.size() == 3 || rest.size() == 4) && rest[0] == "namespaces" &&
        rest[2] == r.plural && !rest[1].empty()) {
      return HandleResource(conn, req, i, rest[1], rest.size() == 4 ? rest[3] : "",
                            rest.size() == 3);
    }
  }
  return RespondStatus(conn, 404, "NotFound", StrCat("the server could not find ", req.path));
}

bool FakeKubeApiServer::HandleResource(Conn& conn, const HttpRequest& req, int resource,
                                       std::string ns, std::string name, bool collection) {
  const ResourceDef& r = kResources[resource];
  if (!req.Query("labelSelector").empty() || !req.Query("fieldSelector").empty()) {
    return RespondStatus(conn, 400, "BadRequest", "fake apiserver: selectors are not supported");
  }
  if (collection && req.method == "GET") {
    const std::string watch = req.Query("watch");
    if (watch == "true" || watch == "1") return ServeWatch(conn, req, resource, ns);
    return ServeList(conn, req, resource, ns);
  }
  if (collection && req.method == "POST") {
    json object = json::parse(req.body, nullptr, false);
    if (object.is_discarded() || !object.is_object()) {
      return RespondStatus(conn, 400, "BadRequest", "the body is not a JSON object");
    }
    if (Str(object, "kind").empty()) object["kind"] = r.kind;
    if (Str(object, "apiVersion").empty()) object["apiVersion"] = r.api_version;
    if (FindResource(Str(object, "apiVersion"), Str(object, "kind")) != resource) {
      return RespondStatus(conn, 400, "BadRequest", "the object's kind does not match the path");
    }
    const std::string name_in = Meta(object, "name");
    if (name_in.empty())
      return RespondStatus(conn, 422, "Invalid", "metadata.name: Required value");
    if (r.namespaced) {
      const std::string ns_in = Meta(object, "namespace");
      if (!ns_in.empty() && ns_in != ns) {
        return RespondStatus(conn, 400, "BadRequest",
                             "the namespace of the provided object does not match the namespace "
                             "sent on the request");
      }
      object["metadata"]["namespace"] = ns;
    }
    json stored;
    {
      std::lock_guard lock(mu_);
      if (!objects_[resource].contains(Key(r, ns, name_in))) {
        bool created = false;
        stored = PutLocked(resource, std::move(object), &created);
      }
    }
    if (stored.is_null()) {
      return RespondStatus(conn, 409, "AlreadyExists",
                           StrCat(r.plural, " \"", name_in, "\" already exists"));
    }
    cv_.notify_all();
    return Respond(conn, 201, stored);
  }
  if (collection) return RespondStatus(conn, 405, "MethodNotAllowed", "GET or POST");
  const std::string key = Key(r, ns, name);
  if (req.method == "GET") {
    std::unique_lock lock(mu_);
    auto it = objects_[resource].find(key);
    if (it == objects_[resource].end()) {
      lock.unlock();
      return RespondStatus(conn, 404, "NotFound", StrCat(r.plural, " \"", name, "\" not found"));
    }
    json object = it->second;
    lock.unlock();
    return Respond(conn, 200, object);
  }
  if (req.method == "PATCH") {
    if (req.Header("content-type") != "application/merge-patch+json") {
      return RespondStatus(conn, 415, "UnsupportedMediaType",
                           StrCat("the body of the request was in an unknown format - accepted "
                                  "media types include: application/merge-patch+json (got ",
                                  req.Header("content-type"), ")"));
    }
    json patch = json::parse(req.body, nullptr, false);
    if (patch.is_discarded() || !patch.is_object()) {
      return RespondStatus(conn, 400, "BadRequest", "the patch is not a JSON object");
    }
    json stored;
    {
      std::lock_guard lock(mu_);
      auto it = objects_[resource].find(key);
      if (it != objects_[resource].end()) {
        json patched = it->second;
        patched.merge_patch(patch);
        // Identity cannot be patched.
        patched["metadata"]["name"] = name;
        if (r.namespaced) patched["metadata"]["namespace"] = ns;
        patched["metadata"]["uid"] = Meta(it->second, "uid");
        bool created = false;
        stored = PutLocked(resource, std::move(patched), &created);
      }
    }
    if (stored.is_null()) {
      return RespondStatus(conn, 404, "NotFound", StrCat(r.plural, " \"", name, "\" not found"));
    }
    cv_.notify_all();
    return Respond(conn, 200, stored);
  }
  if (req.method == "DELETE") {
    std::optional<json> deleted;
    {
      std::lock_guard lock(mu_);
      deleted = DeleteLocked(resource, key);
    }
    if (!deleted) {
      return RespondStatus(conn, 404, "NotFound", StrCat(r.plural, " \"", name, "\" not found"));
    }
    cv_.notify_all();
    return Respond(conn, 200, *deleted);
  }
  return RespondStatus(conn, 405, "MethodNotAllowed", "GET, PATCH or DELETE");
}

bool FakeKubeApiServer::HandleControl(Conn& conn, const HttpRequest& req) {
  if (req.method != "POST") return RespondStatus(conn, 405, "MethodNotAllowed", "POST only");
  const std::string what = req.path.substr(6);
  if (what == "compact") {
    Compact();
  } else if (what == "expire-watches") {
    ExpireWatches();
  } else if (what == "break-watches") {
    BreakWatchesMidEvent();
  } else if (what == "end-watches") {
    EndWatches();
  } else if (what == "bookmarks") {
    SendBookmarks();
  } else {
    return RespondStatus(conn, 404, "NotFound", StrCat("no control endpoint ", req.path));
  }
  return Respond(conn, 200,
                 {{"done", what}, {"resourceVersion", std::to_string(resource_version())}});
}

bool FakeKubeApiServer::ServeList(Conn& conn, const HttpRequest& req, int resource,
                                  const std::string& ns) {
  const ResourceDef& r = kResources[resource];
  int64_t limit = 0;
  if (std::string l = req.Query("limit"); !l.empty()) {
    auto [p, ec] = std::from_chars(l.data(), l.data() + l.size(), limit);
    if (ec != std::errc() || p != l.data() + l.size() || limit < 0) {
      return RespondStatus(conn, 400, "BadRequest", "invalid limit");
    }
  }
  std::string rv;
  std::vector<json> items;
  std::string cont;
  size_t remaining = 0;
  {
    std::lock_guard lock(mu_);
    if (std::string token = req.Query("continue"); !token.empty()) {
      auto it = pages_.find(token);
      if (expire_next_continue_ && it != pages_.end()) {
        expire_next_continue_ = false;
        pages_.erase(it);
        it = pages_.end();
      }
      if (it == pages_.end()) {
        return RespondStatus(conn, 410, "Expired",
                             "The provided continue parameter is too old to display a consistent "
                             "list result. You can start a new list without the continue "
                             "parameter.");
      }
      rv = it->second.first;
      items = std::move(it->second.second);
      pages_.erase(it);
    } else {
      rv = std::to_string(rv_);
      for (const auto& [key, object] : objects_[resource]) {
        if (!ns.empty() && Meta(object, "namespace") != ns) continue;
        items.push_back(object);
      }
    }
    if (limit > 0 && items.size() > static_cast<size_t>(limit)) {
      std::vector<json> rest(items.begin() + limit, items.end());
      items.resize(static_cast<size_t>(limit));
      remaining = rest.size();
      cont = StrCat("page-", next_page_++);
      pages_[cont] = {rv, std::move(rest)};
    }
  }
  json body = {{"kind", StrCat(r.kind, "List")},
               {"apiVersion", r.api_version},
               {"metadata", {{"resourceVersion", rv}}},
               {"items", json::array()}};
  if (!cont.empty()) {
    body["metadata"]["continue"] = cont;
    body["metadata"]["remainingItemCount"] = remaining;
  }
  for (json& item : items) {
    if (r.builtin) {
      item.erase("kind");
      item.erase("apiVersion");
    }
    body["items"].push_back(std::move(item));
  }
  return Respond(conn, 200, body);
}

bool FakeKubeApiServer::ServeWatch(Conn& conn, const HttpRequest& req, int resource,
                                   const std::string& ns) {
  const std::string rv_param = req.Query("resourceVersion");
  const bool bookmarks = req.Query("allowWatchBookmarks") == "true";
  int64_t timeout_s = 1800;
  if (std::string t = req.Query("timeoutSeconds"); !t.empty()) {
    std::from_chars(t.data(), t.data() + t.size(), timeout_s);
  }
  auto matches = [&](const Event& e) {
    return e.resource == -1 || (e.resource == resource && (ns.empty() || e.namespace_name == ns));
  };
  static constexpr std::string_view kHead =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

  std::unique_lock lock(mu_);
  std::vector<std::string> lines;
  uint64_t from = rv_;
  if (rv_param.empty() || rv_param == "0") {
    // Start at "any" point: the current objects as ADDED events first.
    for (const auto& [key, object] : objects_[resource]) {
      if (!ns.empty() && Meta(object, "namespace") != ns) continue;
      lines.push_back(Dump({{"type", "ADDED"}, {"object", object}}));
    }
  } else {
    auto [p, ec] = std::from_chars(rv_param.data(), rv_param.data() + rv_param.size(), from);
    if (ec != std::errc() || p != rv_param.data() + rv_param.size()) {
      lock.unlock();
      return RespondStatus(conn, 400, "BadRequest", StrCat("invalid resourceVersion ", rv_param));
    }
    if (from < compacted_) {
      const std::string message = StrCat("too old resource version: ", from, " (", compacted_, ")");
      const bool http = gone_as_http_;
      lock.unlock();
      if (http) return RespondStatus(conn, 410, "Expired", message);
      return conn.Write(kHead) &&
             conn.Write(Chunk(
                 StrCat(Dump({{"type", "ERROR"}, {"object", StatusBody(410, "Expired", message)}}),
                        "\n"))) &&
             conn.Write("0\r\n\r\n");
    }
  }
  size_t cursor =
      static_cast<size_t>(std::upper_bound(events_.begin(), events_.end(), from,
                                           [](uint64_t v, const Event& e) { return v < e.rv; }) -
                          events_.begin());
  Generations seen = gens_;
  uint64_t sent_upto = from;  // every event up to here has gone out (what a bookmark may claim)
  ++open_watches_;
  cv_.notify_all();
  lock.unlock();

  bool keep = conn.Write(kHead);
  for (const std::string& line : lines) keep = keep && conn.Write(Chunk(line + "\n"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  lock.lock();
  while (keep) {
    // Wakes up now and then to notice a client that went away.
    const auto wake = std::min(deadline, std::chrono::steady_clock::now() + kPeerCheck);
    const bool ready = cv_.wait_until(lock, wake, [&] {
      return stopping_ || gens_.end != seen.end || gens_.expire != seen.expire ||
             gens_.bookmark != seen.bookmark || (!paused_ && cursor < events_.size());
    });
    if (stopping_) {
      keep = false;
      break;
    }
    if (!ready && std::chrono::steady_clock::now() < deadline) {
      if (conn.PeerClosed()) {
        keep = false;
        break;
      }
      continue;
    }
    lines.clear();
    bool end = false;
    if (gens_.expire != seen.expire) {
      lines.push_back(Dump(
          {{"type", "ERROR"},
           {"object", StatusBody(410, "Expired", StrCat("too old resource version: ", from))}}));
      end = true;
    } else if (gens_.end != seen.end || std::chrono::steady_clock::now() >= deadline) {
      end = true;
    } else {
      if (!paused_) {
        for (; cursor < events_.size(); ++cursor) {
          if (matches(events_[cursor])) lines.push_back(events_[cursor].line);
          sent_upto = std::max(sent_upto, events_[cursor].rv);
        }
        sent_upto = std::max(sent_upto, rv_);
      }
      if (gens_.bookmark != seen.bookmark) {
        seen.bookmark = gens_.bookmark;
        if (bookmarks) {
          lines.push_back(
              Dump({{"type", "BOOKMARK"},
                    {"object",
                     {{"kind", kResources[resource].kind},
                      {"apiVersion", kResources[resource].api_version},
                      {"metadata", {{"resourceVersion", std::to_string(sent_upto)}}}}}}));
        }
      }
    }
    const bool broken = gens_.brk != seen.brk;
    lock.unlock();
    for (const std::string& line : lines) {
      const std::string text = line + "\n";
      if (broken) {
        // The chunk announces the whole event; half of it comes, then the connection is cut.
        conn.Write(
            StrCat(fmt::format("{:x}", text.size()), "\r\n", text.substr(0, text.size() / 2)));
        conn.Cut();
        keep = false;
        break;
      }
      keep = keep && conn.Write(Chunk(text));
    }
    if (keep && end) keep = conn.Write("0\r\n\r\n");
    lock.lock();
    if (end) break;
  }
  --open_watches_;
  cv_.notify_all();
  return keep;
}

json FakeKubeApiServer::PutLocked(int resource, json object, bool* created) {
  const ResourceDef& r = kResources[resource];
  json& meta = object["metadata"];
  if (r.namespaced) {
    if (Str(meta, "namespace").empty()) meta["namespace"] = "default";
  } else {
    meta.erase("namespace");
  }
  const std::string key = Key(r, Str(meta, "namespace"), Str(meta, "name"));
  auto it = objects_[resource].find(key);
  ++rv_;
  meta["resourceVersion"] = std::to_string(rv_);
  const std::string uid = Str(meta, "uid");
  if (it != objects_[resource].end() && !uid.empty() && uid != Meta(it->second, "uid")) {
    // Another uid: the old object is deleted, a new one created.
    json old = it->second;
    old["metadata"]["resourceVersion"] = std::to_string(rv_);
    AppendEvent("DELETED", resource, old);
    objects_[resource].erase(it);
    it = objects_[resource].end();
    ++rv_;
    meta["resourceVersion"] = std::to_string(rv_);
  }
  *created = it == objects_[resource].end();
  if (uid.empty()) meta["uid"] = *created ? StrCat("uid-", rv_) : Meta(it->second, "uid");
  if (Str(meta, "creationTimestamp").empty()) {
    meta["creationTimestamp"] =
        *created ? "2026-01-01T00:00:00Z" : Meta(it->second, "creationTimestamp");
  }
  objects_[resource][key] = object;
  AppendEvent(*created ? "ADDED" : "MODIFIED", resource, object);
  return object;
}

void FakeKubeApiServer::AppendEvent(std::string_view type, int resource, const json& object) {
  events_.push_back(Event{.rv = rv_,
                          .resource = resource,
                          .namespace_name = Meta(object, "namespace"),
                          .line = Dump({{"type", type}, {"object", object}})});
}

absl::StatusOr<json> FakeKubeApiServer::Put(json object) {
  const int resource = FindResource(Str(object, "apiVersion"), Str(object, "kind"));
  if (resource < 0) {
    return absl::InvalidArgumentError(StrCat("fake apiserver does not serve ",
                                             Str(object, "apiVersion"), " ", Str(object, "kind")));
  }
  if (Meta(object, "name").empty()) return absl::InvalidArgumentError("metadata.name missing");
  json stored;
  {
    std::lock_guard lock(mu_);
    bool created = false;
    stored = PutLocked(resource, std::move(object), &created);
  }
  cv_.notify_all();
  return stored;
}

absl::Status FakeKubeApiServer::Delete(std::string_view api_version, std::string_view kind,
                                       std::string_view namespace_name, std::string_view name) {
  const int resource = FindResource(api_version, kind);
  if (resource < 0) return absl::InvalidArgumentError(StrCat("unknown kind ", kind));
  const ResourceDef& r = kResources[resource];
  {
    std::lock_guard lock(mu_);
    if (!DeleteLocked(resource,
                      Key(r, namespace_name.empty() ? "default" : std::string(namespace_name),
                          std::string(name)))) {
      return absl::NotFoundError(StrCat(r.plural, " \"", name, "\" not found"));
    }
  }
  cv_.notify_all();
  return absl::OkStatus();
}

std::optional<json> FakeKubeApiServer::DeleteLocked(int resource, const std::string& key) {
  auto it = objects_[resource].find(key);
  if (it == objects_[resource].end()) return std::nullopt;
  ++rv_;
  json object = std::move(it->second);
  objects_[resource].erase(it);
  object["metadata"]["resourceVersion"] = std::to_string(rv_);
  AppendEvent("DELETED", resource, object);
  return object;
}

std::optional<json> FakeKubeApiServer::Object(std::string_view api_version, std::string_view kind,
                                              std::string_view namespace_name,
                                              std::string_view name) const {
  const int resource = FindResource(api_version, kind);
  if (resource < 0) return std::nullopt;
  std::lock_guard lock(mu_);
  auto it = objects_[resource].find(
      Key(kResources[resource], namespace_name.empty() ? "default" : std::string(namespace_name),
          std::string(name)));
  if (it == objects_[resource].end()) return std::nullopt;
  return it->second;
}

uint64_t FakeKubeApiServer::resource_version() const {
  std::lock_guard lock(mu_);
  return rv_;
}

void FakeKubeApiServer::BumpResourceVersion() {
  std::lock_guard lock(mu_);
  ++rv_;
}

void FakeKubeApiServer::Compact() {
  std::lock_guard lock(mu_);
  compacted_ = rv_;
}

int FakeKubeApiServer::open_watches() const {
  std::lock_guard lock(mu_);
  return open_watches_;
}

void FakeKubeApiServer::SendBookmarks() { Signal(&Generations::bookmark); }

void FakeKubeApiServer::EndWatches() { Signal(&Generations::end); }

void FakeKubeApiServer::ExpireWatches() { Signal(&Generations::expire); }

void FakeKubeApiServer::BreakWatchesMidEvent() { Signal(&Generations::brk); }

void FakeKubeApiServer::Signal(uint64_t Generations::*which) {
  {
    std::lock_guard lock(mu_);
    ++(gens_.*which);
  }
  cv_.notify_all();
}

void FakeKubeApiServer::PauseWatches(bool paused) {
  {
    std::lock_guard lock(mu_);
    paused_ = paused;
  }
  cv_.notify_all();
}

void FakeKubeApiServer::SetGoneAsHttpStatus(bool http_status) {
  std::lock_guard lock(mu_);
  gone_as_http_ = http_status;
}

void FakeKubeApiServer::InjectWatchLine(std::string line) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(
        Event{.rv = rv_, .resource = -1, .namespace_name = "", .line = std::move(line)});
  }
  cv_.notify_all();
}

void FakeKubeApiServer::SetToken(std::string token) {
  std::lock_guard lock(mu_);
  token_ = std::move(token);
}

void FakeKubeApiServer::SetResponseDelay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  delay_ = delay;
}

void FakeKubeApiServer::FailRequests(int status, int count) {
  std::lock_guard lock(mu_);
  fail_status_ = status;
  fail_count_ = count;
}

void FakeKubeApiServer::ExpireNextContinueToken() {
  std::lock_guard lock(mu_);
  expire_next_continue_ = true;
}

void FakeKubeApiServer::SetTokenReviewHandler(std::function<json(const json& spec)> handler) {
  std::lock_guard lock(mu_);
  token_review_ = std::move(handler);
}

std::vector<FakeKubeApiServer::Request> FakeKubeApiServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

}  // namespace zm::testutil

#pragma once
// A fake Kubernetes API server for tests (DESIGN §2: no kube-apiserver runs here). A real
// HTTP/1.1 server on 127.0.0.1, plain or TLS, one thread per connection, speaking the API's wire
// format: list JSON with limit/continue, watches as `Transfer-Encoding: chunked` streams of one
// JSON event per line with BOOKMARKs, 410 Gone (as an ERROR event or as the HTTP status),
// get, create, merge-patch, delete, TokenReview, bearer-token checks with v1 Status bodies.
//
// The object store is scripted by the test (Put / Delete) with one resourceVersion counter for
// every kind, as etcd has; every change is an event that open watches see. Knobs make the
// server misbehave the ways a real one does: compacted history, expired watches, streams broken
// in the middle of an event, slow answers, injected failures, garbage on the stream.
//
// Kinds served: v1 Namespace, Pod, Service, Secret; discovery.k8s.io/v1 EndpointSlice;
// security.istio.io/v1 AuthorizationPolicy, PeerAuthentication, RequestAuthentication. Like the
// real server, list items of built-in kinds carry no kind/apiVersion (CRDs' do). Selectors are
// refused with a 400 rather than ignored.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/tls/ossl.h"

namespace zm::tls {
class CertificateAuthority;
}

namespace zm::testutil {

// A throwaway CA with a serving certificate for "localhost" (curl checks the name, so TLS tests
// use https://localhost:PORT), and client certificates on demand.
class TestPki {
 public:
  static absl::StatusOr<TestPki> Create();
  ~TestPki();
  TestPki(TestPki&&) noexcept;
  TestPki& operator=(TestPki&&) noexcept;

  const std::string& ca_pem() const { return ca_pem_; }
  const std::string& server_chain_pem() const { return server_chain_pem_; }  // leaf, then CA
  const std::string& server_key_pem() const { return server_key_pem_; }
  // A client certificate chain and its key (PEM), for spiffe://cluster.local/ns/<ns>/sa/<sa>.
  absl::StatusOr<std::pair<std::string, std::string>> MintClient(std::string_view ns,
                                                                 std::string_view sa) const;

 private:
  TestPki() = default;
  std::unique_ptr<tls::CertificateAuthority> ca_;
  std::string ca_pem_;
  std::string server_chain_pem_;
  std::string server_key_pem_;
};

class FakeKubeApiServer {
 public:
  struct Options {
    const TestPki* tls = nullptr;      // TLS with its serving certificate; plain HTTP when null
    bool require_client_cert = false;  // with tls: clients must present a certificate of the CA
    std::string token;                 // the bearer token every request needs; empty: none
    uint16_t port = 0;                 // on 127.0.0.1; 0: an ephemeral port
    // POST /fake/{compact,expire-watches,break-watches,end-watches,bookmarks} act like the
    // knobs below (for the standalone binary the lab scripts drive; bearer token required).
    bool control_endpoints = false;
  };

  struct Request {
    std::string method;
    std::string target;  // path and query, as sent
    std::string authorization;
    std::string content_type;
    std::string body;
  };

  explicit FakeKubeApiServer(Options options);
  FakeKubeApiServer() : FakeKubeApiServer(Options{}) {}
  ~FakeKubeApiServer();
  FakeKubeApiServer(const FakeKubeApiServer&) = delete;
  FakeKubeApiServer& operator=(const FakeKubeApiServer&) = delete;

  // Listens on 127.0.0.1 (an ephemeral port) and accepts on a thread of its own.
  absl::Status Start();
  // Closes every connection (watches are cut) and joins every thread. Idempotent.
  void Stop();
  uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT", or "https://localhost:PORT" with TLS.
  std::string url() const;

  // --- The object store. Thread-safe; each change takes the next resourceVersion. ---
  // Creates (ADDED) or replaces (MODIFIED) the object named by its apiVersion, kind,
  // metadata.namespace ("default" when absent) and metadata.name. A missing uid is kept from
  // the stored object or made up; a different uid is a new object (as if recreated). Returns
  // what was stored.
  absl::StatusOr<nlohmann::json> Put(nlohmann::json object);
  absl::Status Delete(std::string_view api_version, std::string_view kind,
                      std::string_view namespace_name, std::string_view name);
  std::optional<nlohmann::json> Object(std::string_view api_version, std::string_view kind,
                                       std::string_view namespace_name,
                                       std::string_view name) const;
  uint64_t resource_version() const;
  // Takes a resourceVersion without an event of these kinds (as a change to another kind would).
  void BumpResourceVersion();
  // Forgets the history before the current resourceVersion: a watch from an older one is 410.
  void Compact();

  // --- Watches ---
  int open_watches() const;
  // Every open watch that allows bookmarks gets one, at the current resourceVersion.
  void SendBookmarks();
  // Ends every open watch cleanly, as when its timeoutSeconds passes.
  void EndWatches();
  // Sends every open watch an ERROR event with code 410 (reason Expired), then ends it.
  void ExpireWatches();
  // Every watch open now breaks in the middle of the next event it sends: half of the line, then
  // the connection is cut. Watches opened later are not affected.
  void BreakWatchesMidEvent();
  // Holds events back from open watches (they are sent on resume); control events still go.
  void PauseWatches(bool paused);
  // A watch from a compacted resourceVersion: HTTP 410 (true) or 200 with an ERROR event (false,
  // the default, as a watch-cache apiserver does).
  void SetGoneAsHttpStatus(bool http_status);
  // Sends `line` verbatim (plus "\n") to every open watch, e.g. malformed JSON.
  void InjectWatchLine(std::string line);

  // --- Behaviour ---
  void SetToken(std::string token);
  // Every request waits this long before it is answered (cut short by Stop).
  void SetResponseDelay(std::chrono::milliseconds delay);
  // The next `count` requests (-1: all until cleared with count 0) get HTTP `status`.
  void FailRequests(int status, int count);
  // The next request for a further page of a list is 410 Expired (its token has expired).
  void ExpireNextContinueToken();
  // The answer to a TokenReview: gets the request's spec, returns its status.
  void SetTokenReviewHandler(std::function<nlohmann::json(const nlohmann::json& spec)> handler);

  std::vector<Request> requests() const;

 private:
  struct Event {
    uint64_t rv;
    int resource;  // -1: a raw line for every watch
    std::string namespace_name;
    std::string line;
  };
  struct Generations {
    uint64_t end = 0, expire = 0, brk = 0, bookmark = 0;
  };
  class Conn;
  struct HttpRequest;

  static bool Respond(Conn& conn, int status, const nlohmann::json& body);
  static bool RespondStatus(Conn& conn, int code, std::string_view reason,
                            std::string_view message);

  void AcceptLoop();
  void Serve(int fd);
  // Answers one request; false closes the connection.
  bool Handle(Conn& conn, const HttpRequest& req);
  bool HandleResource(Conn& conn, const HttpRequest& req, int resource, std::string ns,
                      std::string name, bool collection);
  bool ServeList(Conn& conn, const HttpRequest& req, int resource, const std::string& ns);
  bool ServeWatch(Conn& conn, const HttpRequest& req, int resource, const std::string& ns);
  // Open watches act on a changed generation (see ServeWatch).
  void Signal(uint64_t Generations::*which);
  nlohmann::json PutLocked(int resource, nlohmann::json object, bool* created);
  // Removes the object stored under `key` (DELETED event); nullopt when there is none.
  std::optional<nlohmann::json> DeleteLocked(int resource, const std::string& key);
  bool HandleControl(Conn& conn, const HttpRequest& req);
  void AppendEvent(std::string_view type, int resource, const nlohmann::json& object);

  Options options_;
  tls::SslCtxPtr ssl_ctx_;
  Fd listener_;
  uint16_t port_ = 0;
  std::thread acceptor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::string token_;
  std::chrono::milliseconds delay_{0};
  int fail_status_ = 0;
  int fail_count_ = 0;
  bool gone_as_http_ = false;
  bool paused_ = false;
  uint64_t rv_ = 100;
  uint64_t compacted_ = 0;
  int open_watches_ = 0;
  Generations gens_;
  std::vector<std::map<std::string, nlohmann::json>> objects_;  // per resource, by key
  std::vector<Event> events_;
  std::map<std::string, std::pair<std::string, std::vector<nlohmann::json>>> pages_;
  uint64_t next_page_ = 1;
  bool expire_next_continue_ = false;
  std::function<nlohmann::json(const nlohmann::json&)> token_review_;
  std::vector<Request> requests_;

  std::mutex conns_mu_;
  std::set<int> conn_fds_;
  std::vector<std::thread> conn_threads_;
};

}  // namespace zm::testutil

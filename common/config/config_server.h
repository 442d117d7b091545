#pragma once
// The agent's side of the config stream (DESIGN §5 "Config"): holds the current mesh snapshot
// and streams it to every connected ztunnel, a full snapshot first, then one delta per Publish.
//
// Threads: Publish runs on the caller's thread (the agent's control thread) and never blocks on
// a client: it computes the delta once and appends it to each stream's own bounded queue. Each
// stream is served by a gRPC sync-server thread that drains its queue. A stream whose queue
// overflows (a client that stopped reading) is cancelled; its client reconnects and starts again
// from a full snapshot.
//
// Serving: register service() with ca::UdsGrpcServer (Unix socket, mode 0600, peer
// credentials logged per stream). Stop order: ConfigServer::Shutdown(), then destroy the
// UdsGrpcServer, then the ConfigServer.

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/mesh/workload.h"
#include "zmesh/config/v1/config.grpc.pb.h"

namespace zm::config {

class ConfigServer {
 public:
  struct Options {
    // Updates a stream may have waiting before it is dropped as too slow.
    size_t max_queued_updates = 64;
    // Optional: describes the caller of a stream for logs (e.g. UdsGrpcServer::CallerOf).
    std::function<std::string(grpc::ServerContext*)> describe_peer;
  };

  struct Stats {
    size_t streams = 0;           // connected now
    uint64_t streams_opened = 0;  // ever
    uint64_t dropped_slow = 0;    // cancelled because their queue overflowed
    uint64_t version = 0;         // of the current snapshot
  };

  ConfigServer();
  explicit ConfigServer(Options options);
  ~ConfigServer();
  ConfigServer(const ConfigServer&) = delete;
  ConfigServer& operator=(const ConfigServer&) = delete;

  // The gRPC service to register (UdsGrpcServer::Start(path, {server.service()})).
  grpc::Service* service();

  // Makes `snapshot` current: computes the delta against the previous one and queues it on every
  // stream (a new version only when something the stream carries changed). Never blocks on a
  // client. A null snapshot is ignored. Streams opened before the first Publish wait for it: a
  // client never sees an empty mesh that was not published.
  void Publish(std::shared_ptr<const mesh::Snapshot> snapshot);

  // The current snapshot (null before the first Publish) and its version (0 before).
  std::shared_ptr<const mesh::Snapshot> current() const;
  uint64_t version() const;
  Stats stats() const;

  // Ends every stream, refuses new ones (UNAVAILABLE) and waits until every stream handler has
  // returned. Idempotent; the destructor calls it.
  void Shutdown();

 private:
  struct Stream;
  class Service;

  grpc::Status Serve(grpc::ServerContext* ctx, const zmesh::config::v1::StreamRequest& req,
                     grpc::ServerWriter<zmesh::config::v1::ConfigUpdate>* writer);

  const Options options_;
  std::unique_ptr<Service> service_;

  std::mutex publish_mu_;  // serializes Publish; held while diffing, without mu_

  mutable std::mutex mu_;
  bool shut_down_ = false;                          // guarded by mu_
  std::shared_ptr<const mesh::Snapshot> snapshot_;  // guarded by mu_; null before Publish
  uint64_t version_ = 0;                            // guarded by mu_
  // The full update for version_; guarded by mu_.
  std::shared_ptr<const zmesh::config::v1::ConfigUpdate> full_;
  std::set<std::shared_ptr<Stream>> streams_;  // guarded by mu_
  std::condition_variable drained_;            // streams_ became empty
  uint64_t streams_opened_ = 0;                // guarded by mu_
  uint64_t dropped_slow_ = 0;                  // guarded by mu_
};

}  // namespace zm::config

#include "common/config/config_server.h"

#include <chrono>
#include <utility>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/config/convert.h"

namespace zm::config {
namespace {

using zmesh::config::v1::ConfigUpdate;
using zmesh::config::v1::StreamRequest;

spdlog::logger& L() {
  static spdlog::logger& l = Log("config");
  return l;
}

// How often a waiting stream looks for a client that went away without a write to notice it.
constexpr auto kCancelPoll = std::chrono::milliseconds(200);

}  // namespace

struct ConfigServer::Stream {
  grpc::ServerContext* ctx = nullptr;
  std::string peer;
  std::deque<std::shared_ptr<const ConfigUpdate>> queue;  // guarded by ConfigServer::mu_
  bool dropped = false;                                   // too slow; guarded by mu_
  bool closed = false;                                    // Shutdown; guarded by mu_
  std::condition_variable cv;
};

class ConfigServer::Service final : public zmesh::config::v1::ConfigService::Service {
 public:
  explicit Service(ConfigServer* owner) : owner_(owner) {}
  grpc::Status Stream(grpc::ServerContext* ctx, const StreamRequest* req,
                      grpc::ServerWriter<ConfigUpdate>* writer) override {
    return owner_->Serve(ctx, *req, writer);
  }

 private:
  ConfigServer* owner_;
};

ConfigServer::ConfigServer() : ConfigServer(Options{}) {}

ConfigServer::ConfigServer(Options options)
    : options_(std::move(options)), service_(std::make_unique<Service>(this)) {}

ConfigServer::~ConfigServer() { Shutdown(); }

grpc::Service* ConfigServer::service() { return service_.get(); }

void ConfigServer::Publish(std::shared_ptr<const mesh::Snapshot> snapshot) {
  if (!snapshot) return;
  std::lock_guard publish_lock(publish_mu_);
  std::shared_ptr<const mesh::Snapshot> previous;
  uint64_t version;
  {
    std::lock_guard lock(mu_);
    previous = snapshot_;
    version = version_;
  }
  // Only Publish changes snapshot_ and version_, and publish_mu_ is held: both stay as read.
  std::shared_ptr<const ConfigUpdate> delta;
  if (previous) {
    auto d =
        std::make_shared<ConfigUpdate>(DeltaUpdate(*previous, *snapshot, version, version + 1));
    if (Empty(*d)) {
      std::lock_guard lock(mu_);
      snapshot_ = std::move(snapshot);  // same content for the stream; keep the newest object
      return;
    }
    delta = std::move(d);
  }
  auto full = std::make_shared<const ConfigUpdate>(FullUpdate(*snapshot, version + 1));

  std::lock_guard lock(mu_);
  snapshot_ = std::move(snapshot);
  version_ = version + 1;
  full_ = full;
  // Before the first Publish, streams wait with empty queues: they get the full snapshot.
  const std::shared_ptr<const ConfigUpdate>& update = delta ? delta : full;
  for (const std::shared_ptr<Stream>& s : streams_) {
    if (s->dropped || s->closed) continue;
    if (s->queue.size() >= options_.max_queued_updates) {
      s->dropped = true;
      s->queue.clear();
      ++dropped_slow_;
      L().warn("stream {}: {} updates queued, client too slow; dropped (it will resync)", s->peer,
               options_.max_queued_updates);
      s->ctx->TryCancel();
    } else {
      s->queue.push_back(update);
    }
    s->cv.notify_one();
  }
}

grpc::Status ConfigServer::Serve(grpc::ServerContext* ctx, const StreamRequest& req,
                                 grpc::ServerWriter<ConfigUpdate>* writer) {
  auto stream = std::make_shared<Stream>();
  stream->ctx = ctx;
  stream->peer = options_.describe_peer ? options_.describe_peer(ctx) : ctx->peer();
  if (!req.client().empty() || !req.node().empty()) {
    stream->peer = StrCat(stream->peer, " [", req.client(), " node ", req.node(), "]");
  }
  {
    std::lock_guard lock(mu_);
    if (shut_down_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "config server stopping");
    if (full_) stream->queue.push_back(full_);
    streams_.insert(stream);
    ++streams_opened_;
  }
  L().info("stream {}: opened", stream->peer);

  grpc::Status result;
  while (true) {
    std::shared_ptr<const ConfigUpdate> next;
    {
      std::unique_lock lock(mu_);
      while (stream->queue.empty() && !stream->dropped && !stream->closed && !ctx->IsCancelled()) {
        stream->cv.wait_for(lock, kCancelPoll);
      }
      if (stream->dropped) {
        result = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "client too slow; resync");
        break;
      }
      if (stream->closed) {
        result = grpc::Status(grpc::StatusCode::UNAVAILABLE, "config server stopping");
        break;
      }
      if (stream->queue.empty()) {  // cancelled by the client
        result = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
        break;
      }
      next = std::move(stream->queue.front());
      stream->queue.pop_front();
    }
    if (!writer->Write(*next)) {
      std::lock_guard lock(mu_);
      result = stream->dropped
                   ? grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "client too slow; resync")
                   : grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      break;
    }
  }
  {
    std::lock_guard lock(mu_);
    streams_.erase(stream);
    if (streams_.empty()) drained_.notify_all();
  }
  L().info("stream {}: closed: {}", stream->peer, result.error_message());
  return result;
}

std::shared_ptr<const mesh::Snapshot> ConfigServer::current() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

uint64_t ConfigServer::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

ConfigServer::Stats ConfigServer::stats() const {
  std::lock_guard lock(mu_);
  return Stats{.streams = streams_.size(),
               .streams_opened = streams_opened_,
               .dropped_slow = dropped_slow_,
               .version = version_};
}

void ConfigServer::Shutdown() {
  std::unique_lock lock(mu_);
  shut_down_ = true;
  for (const std::shared_ptr<Stream>& s : streams_) {
    if (s->closed) continue;
    s->closed = true;
    s->ctx->TryCancel();
    s->cv.notify_one();
  }
  drained_.wait(lock, [this] { return streams_.empty(); });
}

}  // namespace zm::config

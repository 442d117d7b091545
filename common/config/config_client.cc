#include "common/config/config_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "common/base/log.h"
#include "common/base/strings.h"
#include "common/config/convert.h"
#include "zmesh/config/v1/config.grpc.pb.h"

namespace zm::config {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("config");
  return l;
}

}  // namespace

ConfigClient::ConfigClient(Options options, Callback on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)) {}

ConfigClient::~ConfigClient() { Stop(); }

void ConfigClient::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ConfigClient::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (ctx_) ctx_->TryCancel();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const mesh::Snapshot> ConfigClient::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

uint64_t ConfigClient::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

ConfigClient::Stats ConfigClient::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::string ConfigClient::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void ConfigClient::Run() {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  while (true) {
    bool applied_any = false;
    std::string why = RunStream(&applied_any);
    std::unique_lock lock(mu_);
    stats_.connected = false;
    if (stopping_) return;
    last_error_ = why;
    if (applied_any) backoff = options_.initial_backoff;
    L().warn("config stream {}: {}; reconnecting in {} ms", options_.target, why, backoff.count());
    cv_.wait_for(lock, backoff, [this] { return stopping_; });
    if (stopping_) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

std::string ConfigClient::RunStream(bool* applied_any) {
  namespace v1 = ::zmesh::config::v1;
  // A fresh channel per stream: gRPC's own reconnect backoff (up to minutes) stays out of it.
  // A full snapshot of a large cluster exceeds gRPC's default 4 MiB receive limit.
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel =
      grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::ConfigService::NewStub(channel);
  auto ctx = std::make_shared<grpc::ClientContext>();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return "";
    ctx_ = ctx;
  }
  v1::StreamRequest req;
  req.set_node(options_.node);
  req.set_client(options_.client_name);
  std::unique_ptr<grpc::ClientReader<v1::ConfigUpdate>> reader = stub->Stream(ctx.get(), req);

  std::string why;  // set when the client drops the stream
  bool first = true;
  v1::ConfigUpdate u;
  while (reader->Read(&u)) {
    std::shared_ptr<const mesh::Snapshot> base;
    uint64_t held;
    {
      std::lock_guard lock(mu_);
      if (first) ++stats_.streams;
      base = snapshot_;
      held = version_;
    }
    if (first && !u.full()) {
      why = StrCat("first update (version ", u.version(), ") is not a full snapshot");
    } else if (!u.full() && (u.base_version() != held || u.version() <= u.base_version())) {
      why = StrCat("delta ", u.base_version(), " -> ", u.version(), " does not apply to version ",
                   held, "; resync");
    }
    absl::StatusOr<mesh::Snapshot> next = absl::UnknownError("");
    if (why.empty()) {
      next = ApplyUpdate(u.full() ? nullptr : base.get(), u);
      if (!next.ok()) {
        why = StrCat("update ", u.version(), " refused: ", next.status().message(), "; resync");
      }
    }
    if (!why.empty()) {
      std::lock_guard lock(mu_);
      ++stats_.resyncs;
      ctx->TryCancel();
      break;
    }
    Update update{.snapshot = std::make_shared<const mesh::Snapshot>(std::move(*next)),
                  .version = u.version(),
                  .full = u.full()};
    {
      std::lock_guard lock(mu_);
      snapshot_ = update.snapshot;
      version_ = update.version;
      stats_.connected = true;
      ++(u.full() ? stats_.full_updates : stats_.deltas);
      if (stopping_) break;
    }
    first = false;
    *applied_any = true;
    if (on_change_) on_change_(update);
  }
  grpc::Status st = reader->Finish();
  std::lock_guard lock(mu_);
  ctx_.reset();
  if (stopping_) return "";
  if (why.empty()) {
    ++stats_.stream_errors;
    why = st.ok() ? std::string("stream ended by the server")
                  : StrCat("stream failed: ", st.error_message());
  }
  return why;
}

}  // namespace zm::config

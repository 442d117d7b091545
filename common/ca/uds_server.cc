#include "common/ca/uds_server.h"

#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::ca {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("ca");
  return l;
}

std::string ProcessName(pid_t pid) {
  std::ifstream in(StrCat("/proc/", pid, "/comm"));
  std::string name;
  std::getline(in, name);
  return name.empty() ? "?" : name;
}

}  // namespace

absl::StatusOr<std::unique_ptr<UdsGrpcServer>> UdsGrpcServer::Start(
    const std::string& path, const std::vector<grpc::Service*>& services) {
  sockaddr_un addr{.sun_family = AF_UNIX};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(StrCat("socket path too long: ", path));
  }
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  ::unlink(path.c_str());
  Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return ErrnoError("socket", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError("bind", path);
  }
  ::chmod(path.c_str(), 0600);
  if (::listen(s.get(), 64) != 0) return ErrnoError("listen", path);
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoError("eventfd", path);

  grpc::ServerBuilder builder;  // no listening port: connections come from AcceptLoop
  for (grpc::Service* svc : services) builder.RegisterService(svc);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return absl::InternalError(StrCat("gRPC server for ", path, " did not start"));
  auto out = std::unique_ptr<UdsGrpcServer>(
      new UdsGrpcServer(path, std::move(s), std::move(wake), std::move(server)));
  out->accept_thread_ = std::thread([p = out.get()] { p->AcceptLoop(); });
  return out;
}

UdsGrpcServer::UdsGrpcServer(std::string path, Fd listener, Fd wake,
                             std::unique_ptr<grpc::Server> server)
    : path_(std::move(path)),
      listener_(std::move(listener)),
      wake_(std::move(wake)),
      server_(std::move(server)) {}

UdsGrpcServer::~UdsGrpcServer() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
  if (accept_thread_.joinable()) accept_thread_.join();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  ::unlink(path_.c_str());
}

void UdsGrpcServer::AcceptLoop() {
  pollfd p[2] = {{.fd = listener_.get(), .events = POLLIN}, {.fd = wake_.get(), .events = POLLIN}};
  while (true) {
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || p[1].revents) return;
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EMFILE and friends: the listener stays readable, so pause instead of spinning.
      L().warn("{}: accept: {}", path_, std::strerror(errno));
      ::poll(&p[1], 1, 100);
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      L().warn("{}: SO_PEERCRED failed; connection refused", path_);
      ::close(fd);
      continue;
    }
    {
      // A reused fd number belongs to a new connection: its entry is overwritten here,
      // before gRPC can serve a single RPC on it.
      std::lock_guard lock(mu_);
      callers_[fd] = Caller{.pid = cred.pid, .uid = cred.uid,
                            .description = StrCat("pid ", cred.pid, " (", ProcessName(cred.pid),
                                                  ") uid ", cred.uid)};
    }
    grpc::AddInsecureChannelFromFd(server_.get(), fd);  // gRPC owns the fd from here
  }
}

absl::StatusOr<Caller> UdsGrpcServer::CallerOf(grpc::ServerContext* ctx) const {
  const std::string peer = ctx->peer();  // "fd:<n>" for channels added from an fd
  int fd = -1;
  if (peer.rfind("fd:", 0) == 0) fd = std::atoi(peer.c_str() + 3);
  std::lock_guard lock(mu_);
  auto it = callers_.find(fd);
  if (it == callers_.end()) {
    return absl::UnauthenticatedError(StrCat("unknown peer ", peer));
  }
  return it->second;
}

}  // namespace zm::ca

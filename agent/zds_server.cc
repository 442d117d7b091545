#include "agent/zds_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/zds/zds.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("zds");
  return l;
}

// Waits until `fd` is readable or the deadline passes.
absl::Status WaitReadable(int fd, std::chrono::milliseconds timeout, const std::string& what) {
  pollfd p{.fd = fd, .events = POLLIN};
  int n;
  do {
    n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("poll", what);
  if (n == 0) {
    return absl::DeadlineExceededError(
        StrCat("ztunnel did not answer ", what, " within ", timeout.count(), " ms"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZdsServer>> ZdsServer::Listen(const std::string& path) {
  sockaddr_un addr{.sun_family = AF_UNIX};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(StrCat("--zds-socket path too long: ", path));
  }
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return absl::InternalError(StrCat("mkdir ", parent.string(), ": ", ec.message()));
  }
  ::unlink(path.c_str());  // a stale socket from an earlier run
  Fd s(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!s) return ErrnoError("socket", "ZDS");
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError("bind", path);
  }
  ::chmod(path.c_str(), 0600);  // only root (ztunnel) may hand netns fds around
  if (::listen(s.get(), 8) != 0) return ErrnoError("listen", path);
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoError("eventfd", "ZDS");
  return std::unique_ptr<ZdsServer>(new ZdsServer(path, std::move(s), std::move(wake)));
}

ZdsServer::~ZdsServer() { ::unlink(path_.c_str()); }

absl::StatusOr<Fd> ZdsServer::Accept() {
  pollfd p[2] = {{.fd = listener_.get(), .events = POLLIN}, {.fd = wake_.get(), .events = POLLIN}};
  while (true) {
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("poll", path_);
    if (p[1].revents) return absl::CancelledError("ZDS server shut down");
    Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return ErrnoError("accept", path_);
    }
    return c;
  }
}

void ZdsServer::Shutdown() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

absl::StatusOr<ZtunnelPeer> ZdsServer::Adopt(Fd conn) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoError("getsockopt(SO_PEERCRED)", "ZDS connection");
  }
  ZM_RETURN_IF_ERROR(WaitReadable(conn.get(), ack_timeout_, "hello"));
  ZM_ASSIGN_OR_RETURN(zds::Datagram d, zds::RecvDatagram(conn.get()));
  ZM_RETURN_IF_ERROR(zds::DecodeHello(std::move(d)).status());
  if (conn_) L().info("a new ztunnel (pid {}) replaces the connected one", cred.pid);
  conn_ = std::move(conn);
  return ZtunnelPeer{.pid = cred.pid, .uid = cred.uid};
}

bool ZdsServer::CheckHangup() {
  if (!conn_) return true;
  pollfd p{.fd = conn_.get(), .events = POLLIN};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR)) {
    Drop(absl::UnavailableError("ztunnel closed the connection"));
    return true;
  }
  // Unsolicited data: ztunnel speaks only in answer to a request.
  auto d = zds::RecvDatagram(conn_.get());
  Drop(d.ok() ? absl::InvalidArgumentError("unsolicited message from ztunnel") : d.status());
  return true;
}

void ZdsServer::Drop(const absl::Status& why) {
  if (!conn_) return;
  L().warn("ztunnel connection dropped: {}", why.message());
  conn_.reset();
}

absl::StatusOr<std::vector<Fd>> ZdsServer::Exchange(const std::string& what,
                                                    const std::string& bytes, int fd) {
  if (!conn_) return absl::UnavailableError(StrCat("no ztunnel connected for ", what));
  std::vector<int> fds;
  if (fd >= 0) fds.push_back(fd);
  absl::Status st = zds::SendDatagram(conn_.get(), bytes, fds);
  if (st.ok()) st = WaitReadable(conn_.get(), ack_timeout_, what);
  if (!st.ok()) {
    Drop(st);
    return st;
  }
  auto d = zds::RecvDatagram(conn_.get());
  if (!d.ok()) {
    Drop(d.status());
    return d.status();
  }
  auto ack = zds::DecodeAck(std::move(*d));
  if (!ack.ok()) {
    Drop(ack.status());
    return ack.status();
  }
  if (!ack->error.empty()) {
    return absl::FailedPreconditionError(StrCat("ztunnel refused ", what, ": ", ack->error));
  }
  return std::move(ack->listeners);
}

absl::StatusOr<std::vector<Fd>> ZdsServer::Add(const WorkloadRef& w, int netns_fd) {
  zds::AddWorkload add{.uid = w.uid, .name = w.name, .ns = w.ns,
                       .service_account = w.service_account};
  return Exchange(StrCat("add(", w.ns, "/", w.name, ")"),
                  zds::EncodeRequest(zds::Request(std::move(add))), netns_fd);
}

absl::Status ZdsServer::Del(const std::string& uid) {
  return Exchange(StrCat("del(", uid, ")"),
                  zds::EncodeRequest(zds::Request(zds::DelWorkload{.uid = uid})), -1)
      .status();
}

absl::Status ZdsServer::SnapshotSent() {
  return Exchange("snapshot-sent", zds::EncodeRequest(zds::Request(zds::SnapshotSent{})), -1)
      .status();
}

}  // namespace zm::agent

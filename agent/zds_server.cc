#include "agent/zds_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/base/unix_socket.h"
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
  // 0600: only root (ztunnel) may hand netns fds around.
  ZM_ASSIGN_OR_RETURN(auto listener, UnixListener::Listen(path, SOCK_SEQPACKET, 0600, "ZDS"));
  return std::unique_ptr<ZdsServer>(new ZdsServer(std::move(listener)));
}

ZdsServer::~ZdsServer() = default;

absl::StatusOr<Fd> ZdsServer::Accept() { return listener_->Accept(); }

void ZdsServer::Shutdown() { listener_->Shutdown(); }

absl::StatusOr<ZtunnelPeer> ZdsServer::Adopt(Fd conn, pid_t refused_pid) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoError("getsockopt(SO_PEERCRED)", "ZDS connection");
  }
  if (refused_pid != 0 && cred.pid == refused_pid) {
    return absl::FailedPreconditionError(
        StrCat("pid ", cred.pid, " is the ztunnel being replaced (draining); it gets no pods"));
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

#include "agent/node_lease.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/cni/protocol.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("lease");
  return l;
}

constexpr char kRequest[] = "stand-down";

std::string LockPath(const std::string& dir) { return dir + "/agent.lock"; }
std::string HandoverPath(const std::string& dir) { return dir + "/agent-handover.sock"; }

// The pid the holder wrote into the lock file, for the logs ("?" if unreadable).
std::string HolderPid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "?";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "?" : s;
}

// Asks the holder to stand down; ok once it answered "ok".
absl::Status AskToStandDown(const std::string& dir) {
  const std::string path = HandoverPath(dir);
  ZM_ASSIGN_OR_RETURN(Fd conn, ConnectUnix(path, SOCK_STREAM));
  ZM_RETURN_IF_ERROR(cni::WriteAll(conn.get(), StrCat(kRequest, "\n"), path));
  // The holder stops its control loop and closes its sockets first: a few seconds at most.
  ZM_ASSIGN_OR_RETURN(std::string reply,
                      cni::ReadLine(conn.get(),
                                    std::chrono::steady_clock::now() + std::chrono::seconds(30),
                                    "the agent holding the node lease"));
  if (reply != "ok") {
    return absl::FailedPreconditionError(StrCat(path, " answered '", reply, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeLease>> NodeLease::Acquire(
    const std::string& dir, const std::function<bool()>& stop_requested) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(StrCat("mkdir ", dir, ": ", ec.message()));
  const std::string path = LockPath(dir);
  Fd lock(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) return ErrnoError("open", path);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoError("flock", path);
    const std::string holder = HolderPid(lock.get());
    L().info("node lease {} is held by agent pid {}: asking it to stand down", path, holder);
    absl::Status asked = AskToStandDown(dir);
    if (asked.ok()) {
      L().info("agent pid {} stood down", holder);
    } else {
      L().warn("agent pid {} did not stand down ({}); waiting for it to exit", holder,
               asked.message());
    }
    auto next_log = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return ErrnoError("flock", path);
      if (stop_requested()) return absl::CancelledError("stopped while waiting for the node lease");
      if (std::chrono::steady_clock::now() >= next_log) {
        L().info("still waiting for the node lease {} (held by agent pid {})", path,
                 HolderPid(lock.get()));
        next_log += std::chrono::seconds(10);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  const std::string pid = StrCat(::getpid(), "\n");
  if (::ftruncate(lock.get(), 0) != 0 ||
      ::pwrite(lock.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    L().warn("{}: cannot record this agent's pid: {}", path, std::strerror(errno));
  }
  L().info("node lease {} taken", path);
  return std::unique_ptr<NodeLease>(new NodeLease(dir, std::move(lock)));
}

NodeLease::~NodeLease() {
  if (thread_.joinable()) {
    if (!BeginStop()) return;  // BeginStop joined the thread
    CompleteHandover();
  }
}

absl::Status NodeLease::ServeHandover(std::function<void(pid_t)> stand_down) {
  ZM_ASSIGN_OR_RETURN(listener_,
                      UnixListener::Listen(HandoverPath(dir_), SOCK_STREAM, 0600, "handover"));
  stand_down_ = std::move(stand_down);
  thread_ = std::thread([this] { Serve(); });
  return absl::OkStatus();
}

void NodeLease::Serve() {
  while (true) {
    absl::StatusOr<Fd> conn = listener_->Accept();
    if (!conn.ok()) {
      if (!absl::IsCancelled(conn.status())) L().error("handover: {}", conn.status().message());
      return;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    (void)::getsockopt(conn->get(), SOL_SOCKET, SO_PEERCRED, &cred, &len);
    auto line = cni::ReadLine(conn->get(), std::chrono::steady_clock::now() + std::chrono::seconds(2),
                              "a handover request");
    if (!line.ok() || *line != kRequest) {
      L().warn("handover: refused a request from pid {}: {}", cred.pid,
               line.ok() ? StrCat("'", *line, "' is not ", kRequest) : line.status().message());
      (void)cni::WriteAll(conn->get(), "error: expected stand-down\n", "a handover peer");
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        (void)cni::WriteAll(conn->get(), "error: this agent is stopping\n", "a handover peer");
        return;
      }
      stopping_ = handing_over_ = true;
      L().info("handover: agent pid {} takes over this node; standing down", cred.pid);
      stand_down_(cred.pid);
    }
    torn_down_.get_future().wait();
    listener_.reset();  // removes the socket before the lease goes: it is the newcomer's next
    lock_.reset();      // releases the flock
    absl::Status st = cni::WriteAll(conn->get(), "ok\n", "the agent taking over");
    if (!st.ok()) L().warn("handover: {}", st.message());
    L().info("handover: node lease released to pid {}", cred.pid);
    return;
  }
}

bool NodeLease::BeginStop() {
  {
    std::lock_guard lock(mu_);
    if (handing_over_) return true;
    stopping_ = true;
  }
  if (listener_) listener_->Shutdown();
  if (thread_.joinable()) thread_.join();
  return false;
}

void NodeLease::CompleteHandover() {
  torn_down_.set_value();
  if (thread_.joinable()) thread_.join();
}

}  // namespace zm::agent

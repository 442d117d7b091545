#pragma once
// One agent acts on a node at a time (DESIGN §3 "Upgrades"). A surge upgrade starts the new
// zmesh-node pod while the old one still runs: the new agent takes over the node from the old
// one, which stands down, and the old ztunnel drains while the new one serves (SO_REUSEPORT).
//
// The lease is an flock on <dir>/agent.lock (the kernel drops it when its holder dies, so a
// crashed agent never blocks its successor). The holder serves <dir>/agent-handover.sock:
// a newcomer that finds the lock taken connects, sends "stand-down\n" and waits for "ok\n".
// The holder stops acting (no map write, no socket of its own left: it unlinks them, so the
// newcomer can bind the same paths without the old one unlinking them later), releases the
// lock and answers. It keeps its ZDS connection open, so its ztunnel does not reconnect to the
// newcomer, and waits for SIGTERM.

#include <sys/types.h>

#include <mutex>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/base/unix_socket.h"

namespace zm::agent {

class NodeLease {
 public:
  // Takes the lease of `dir` (created 0700 if missing). If another agent holds it, asks it to
  // stand down and waits for the lease, logging every 10 s; `stop_requested` ends the wait
  // (Cancelled). An old holder that does not answer is waited for all the same.
  static absl::StatusOr<std::unique_ptr<NodeLease>> Acquire(
      const std::string& dir, const std::function<bool()>& stop_requested);
  ~NodeLease();
  NodeLease(const NodeLease&) = delete;
  NodeLease& operator=(const NodeLease&) = delete;

  // Serves handover requests on a thread of its own. On the first request `stand_down` runs
  // on that thread (it must only ask the agent to stop); the answer waits for
  // CompleteHandover().
  absl::Status ServeHandover(std::function<void(pid_t newcomer)> stand_down);

  // Call when the agent has stopped, before tearing its sockets down. Returns true when a
  // newcomer asked (stand_down has returned); otherwise refuses later requests and ends the
  // service.
  bool BeginStop();
  // After BeginStop() returned true and every socket of this agent is gone: removes the
  // handover socket, releases the lease and answers "ok".
  void CompleteHandover();

  const std::string& dir() const { return dir_; }

 private:
  NodeLease(std::string dir, Fd lock) : dir_(std::move(dir)), lock_(std::move(lock)) {}
  void Serve();

  std::string dir_;
  Fd lock_;
  std::unique_ptr<UnixListener> listener_;
  std::function<void(pid_t)> stand_down_;
  std::thread thread_;
  std::mutex mu_;
  bool stopping_ = false;  // guarded by mu_: a request was taken or BeginStop ran
  bool handing_over_ = false;  // guarded by mu_
  std::promise<void> torn_down_;  // set by CompleteHandover()
};

}  // namespace zm::agent

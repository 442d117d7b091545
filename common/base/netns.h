#pragma once
// Network-namespace helpers. setns(2) is per thread: work that must happen inside a pod's
// netns either runs on a short-lived helper thread (RunInNetns) or, on a hot path, under a
// ScopedNetns that switches the calling thread and switches it back.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/base/fd.h"

namespace zm {

// Opens a netns by path ("/proc/123/ns/net", "/var/run/netns/x") or by `ip netns` name.
absl::StatusOr<Fd> OpenNetns(std::string_view path_or_name);

// The inode number of a netns fd: stable identity of the namespace while it lives.
absl::StatusOr<uint64_t> NetnsInode(int netns_fd);

// Runs `fn` on a helper thread that has entered `netns_fd`; returns fn's status.
absl::Status RunInNetns(int netns_fd, const std::function<absl::Status()>& fn);

// The kernel's netns cookie (SO_NETNS_COOKIE), as bpf_get_netns_cookie() reports it.
absl::StatusOr<uint64_t> NetnsCookie(int netns_fd);
// The cookie of the calling thread's current netns.
absl::StatusOr<uint64_t> CurrentNetnsCookie();

// Switches the calling thread into `netns_fd` for the guard's lifetime. Failing to switch
// back would leave the thread in a pod's namespace: that aborts the process (a "cannot
// happen" that must be loud).
class ScopedNetns {
 public:
  static absl::StatusOr<ScopedNetns> Enter(int netns_fd);
  ScopedNetns(ScopedNetns&& other) noexcept = default;
  ScopedNetns& operator=(ScopedNetns&&) = delete;
  ~ScopedNetns();

 private:
  explicit ScopedNetns(Fd original) : original_(std::move(original)) {}
  Fd original_;
};

}  // namespace zm

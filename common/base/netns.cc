#include "common/base/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <thread>

#include "common/base/strings.h"
#include "common/base/status.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace zm {

absl::StatusOr<Fd> OpenNetns(std::string_view path_or_name) {
  std::string path(path_or_name);
  if (path.find('/') == std::string::npos) path = StrCat("/var/run/netns/", path_or_name);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open netns", path);
  return fd;
}

absl::StatusOr<uint64_t> NetnsInode(int netns_fd) {
  struct stat st {};
  if (::fstat(netns_fd, &st) != 0) return ErrnoError("fstat", "netns fd");
  return static_cast<uint64_t>(st.st_ino);
}

absl::Status RunInNetns(int netns_fd, const std::function<absl::Status()>& fn) {
  absl::Status result;
  std::thread helper([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = ErrnoError("setns", "netns fd");
      return;
    }
    result = fn();
  });
  helper.join();
  return result;
}

absl::StatusOr<uint64_t> CurrentNetnsCookie() {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) s = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return ErrnoError("socket", "netns cookie probe");
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (::getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
    return ErrnoError("getsockopt(SO_NETNS_COOKIE)", "netns cookie probe");
  }
  return cookie;
}

absl::StatusOr<uint64_t> NetnsCookie(int netns_fd) {
  uint64_t cookie = 0;
  ZM_RETURN_IF_ERROR(RunInNetns(netns_fd, [&]() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(cookie, CurrentNetnsCookie());
    return absl::OkStatus();
  }));
  return cookie;
}

absl::StatusOr<ScopedNetns> ScopedNetns::Enter(int netns_fd) {
  Fd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original) return ErrnoError("open", "/proc/thread-self/ns/net");
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return ErrnoError("setns", "pod netns");
  return ScopedNetns(std::move(original));
}

ScopedNetns::~ScopedNetns() {
  if (original_ && ::setns(original_.get(), CLONE_NEWNET) != 0) std::abort();
}

}  // namespace zm

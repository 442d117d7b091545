#include "common/base/unix_socket.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm {
namespace {

absl::StatusOr<sockaddr_un> Address(const std::string& path, std::string_view what) {
  sockaddr_un addr{.sun_family = AF_UNIX};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(StrCat(what, " socket path empty or longer than ",
                                             sizeof(addr.sun_path) - 1, " bytes: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  return addr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Listen(const std::string& path,
                                                                   int type, mode_t mode,
                                                                   std::string_view what) {
  ZM_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path, what));
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return absl::InternalError(StrCat("mkdir ", parent.string(), ": ", ec.message()));
  }
  ::unlink(path.c_str());  // a stale socket from an earlier run
  Fd s(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!s) return ErrnoError("socket", what);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError("bind", path);
  }
  if (::chmod(path.c_str(), mode) != 0) return ErrnoError("chmod", path);
  if (::listen(s.get(), 64) != 0) return ErrnoError("listen", path);
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return ErrnoError("eventfd", what);
  return std::unique_ptr<UnixListener>(
      new UnixListener(path, std::string(what), std::move(s), std::move(wake)));
}

UnixListener::~UnixListener() { ::unlink(path_.c_str()); }

absl::StatusOr<Fd> UnixListener::Accept() {
  pollfd p[2] = {{.fd = listener_.get(), .events = POLLIN}, {.fd = wake_.get(), .events = POLLIN}};
  while (true) {
    int n = ::poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("poll", path_);
    if (p[1].revents) return absl::CancelledError(StrCat(what_, " server shut down"));
    Fd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return ErrnoError("accept", path_);
    }
    return c;
  }
}

void UnixListener::Shutdown() {
  uint64_t one = 1;
  // An eventfd write fails only when the counter would overflow: harmless, it is set anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

absl::StatusOr<Fd> ConnectUnix(const std::string& path, int type) {
  ZM_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path, "peer"));
  Fd s(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!s) return ErrnoError("socket", path);
  int rc;
  do {
    rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return ErrnoError("connect", path);
  return s;
}

}  // namespace zm

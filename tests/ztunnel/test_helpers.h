#pragma once
// Blocking-socket helpers with deadlines for the ztunnel tests (no sleeps: every wait is
// a poll() on the condition, bounded by a deadline).

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/base/fd.h"
#include "common/base/netns.h"
#include "common/base/status.h"

namespace zm::ztunnel::testing {

using namespace std::chrono_literals;
inline constexpr auto kDeadline = 10s;

inline bool IsRoot() { return ::geteuid() == 0; }

// Waits until `cond` holds; false at the deadline. Checks every millisecond: this waits on a
// condition, it does not sleep for an assumed duration.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds deadline = kDeadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

inline bool PollFd(int fd, short events, std::chrono::milliseconds deadline = kDeadline) {
  pollfd p{.fd = fd, .events = events, .revents = 0};
  return ::poll(&p, 1, static_cast<int>(deadline.count())) == 1;
}

inline uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

// A blocking TCP listener on 127.0.0.1:0 (or `port`).
inline Fd Listen4(int backlog = 16, uint16_t port = 0) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return Fd();
  if (::listen(fd.get(), backlog) != 0) return Fd();
  return fd;
}

// Blocking connect to 127.0.0.1:port; errno set on failure.
inline Fd Connect4(uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return Fd();
  return fd;
}

inline Fd AcceptWithin(int listener, std::chrono::milliseconds deadline = kDeadline) {
  if (!PollFd(listener, POLLIN, deadline)) return Fd();
  return Fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

inline bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct ReadResult {
  std::string data;
  int error = 0;     // errno of the read that ended it (ECONNRESET), 0 on EOF
  bool eof = false;  // orderly EOF
  bool timed_out = false;
};

// Reads until EOF, an error, or `max` bytes.
inline ReadResult ReadUntilEnd(int fd, size_t max = SIZE_MAX,
                               std::chrono::milliseconds deadline = kDeadline) {
  ReadResult r;
  auto until = std::chrono::steady_clock::now() + deadline;
  char buf[65536];
  while (r.data.size() < max) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !PollFd(fd, POLLIN, left)) {
      r.timed_out = true;
      return r;
    }
    ssize_t n = ::recv(fd, buf, std::min(sizeof(buf), max - r.data.size()), 0);
    if (n < 0) {
      r.error = errno;
      return r;
    }
    if (n == 0) {
      r.eof = true;
      return r;
    }
    r.data.append(buf, static_cast<size_t>(n));
  }
  return r;
}

inline void LingerZero(int fd) {
  linger l{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

// A fresh network namespace with lo up, owned by the returned fd: it disappears with the fd
// (and the sockets in it), so nothing leaks when a test fails. Root only.
inline absl::StatusOr<Fd> NewNetns() {
  absl::StatusOr<Fd> result = absl::UnknownError("unset");
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = ErrnoError("unshare", "CLONE_NEWNET");
      return;
    }
    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) {
      result = ErrnoError("ioctl(SIOCGIFFLAGS)", "lo");
      return;
    }
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) != 0) {
      result = ErrnoError("ioctl(SIOCSIFFLAGS)", "lo");
      return;
    }
    Fd ns(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!ns) {
      result = ErrnoError("open", "/proc/thread-self/ns/net");
      return;
    }
    result = std::move(ns);
  });
  t.join();
  return result;
}

// Connects to 127.0.0.1:port inside `netns`; 0 on success, else errno.
inline int ConnectInNetns(int netns, uint16_t port) {
  int err = -1;
  absl::Status st = RunInNetns(netns, [&]() -> absl::Status {
    Fd c = Connect4(port);
    err = c ? 0 : errno;
    return absl::OkStatus();
  });
  return st.ok() ? err : -1;
}

}  // namespace zm::ztunnel::testing

#pragma once
// Helpers of the root-only bpf tests: the cgroup v2 mount, shell commands, socket cookies.

#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace zm::bpf::test_util {

// The cgroup v2 mount point, from mountinfo: never assumed (here /sys/fs/cgroup/unified).
inline std::string Cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, mount_point, word;
    f >> id >> parent >> dev >> root >> mount_point;
    while (f >> word && word != "-") {
    }
    if (f >> word && word == "cgroup2") return mount_point;
  }
  return "";
}

// The calling process's cgroup v2 path relative to the mount ("0::/x" in /proc/self/cgroup).
inline std::string OwnCgroup() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("0::")) return line.substr(3);
  }
  return "";
}

inline bool Shell(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

inline uint64_t SocketCookie(int fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
  return cookie;
}

}  // namespace zm::bpf::test_util

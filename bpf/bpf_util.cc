#include "bpf/bpf_util.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <memory>

#include "common/base/strings.h"

namespace zm::bpf {

std::string SkLookupLinkName(uint64_t cookie) { return StrCat(kSkLookupPrefix, cookie); }

uint64_t SkLookupCookie(std::string_view name) {
  if (!name.starts_with(kSkLookupPrefix)) return 0;
  name.remove_prefix(kSkLookupPrefix.size());
  uint64_t cookie = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), cookie);
  if (ec != std::errc() || ptr != name.data() + name.size()) return 0;
  return cookie;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if (errno == ENOENT) return std::vector<std::string>{};
    return ErrnoError("opendir", dir);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<Fd> ObjGet(const std::string& path, bool read_only) {
  LIBBPF_OPTS(bpf_obj_get_opts, opts,
              .file_flags = read_only ? static_cast<uint32_t>(BPF_F_RDONLY) : 0u);
  Fd fd(bpf_obj_get_opts(path.c_str(), &opts));
  if (!fd) return ErrnoError("bpf_obj_get", path);
  return fd;
}

absl::StatusOr<bpf_link_info> LinkInfo(int link_fd, std::string_view name) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0) {
    return ErrnoError("bpf_obj_get_info_by_fd", name);
  }
  return info;
}

absl::StatusOr<bpf_map_info> MapInfo(int map_fd, std::string_view name) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0) {
    return ErrnoError("bpf_obj_get_info_by_fd", name);
  }
  return info;
}

bool LinkDefunct(const bpf_link_info& info) {
  switch (info.type) {
    case BPF_LINK_TYPE_CGROUP:
      return info.cgroup.cgroup_id == 0;
    case BPF_LINK_TYPE_NETNS:
      return info.netns.netns_ino == 0;
    default:
      return false;
  }
}

}  // namespace zm::bpf

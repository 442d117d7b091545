#pragma once
// Low-level helpers shared by PinnedDatapath (read-write, the agent) and PinnedMaps
// (read-only, zmeshctl): the pin layout, typed map dumps and link info.

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "common/base/status.h"

namespace zm::bpf {

// Every map pinned by name (zm_sk_orig is not pinned).
inline constexpr std::array<std::string_view, 10> kPinnedMaps = {
    "zm_config",     "zm_meta",     "zm_netns",  "zm_pod_ip",    "zm_pod_name",
    "zm_ports_excl", "zm_orig_dst", "zm_bypass", "zm_listeners", "zm_stats"};
// The cgroup programs, each with one link pinned as links/<name>.
inline constexpr std::array<std::string_view, 4> kCgroupLinks = {"connect4", "connect6", "sockops",
                                                                 "getsockopt"};
inline constexpr std::string_view kSkLookupPrefix = "sk_lookup_";

inline std::string LinksDir(const std::string& pin_dir) { return pin_dir + "/links"; }
std::string SkLookupLinkName(uint64_t cookie);
// The cookie of a "sk_lookup_<cookie>" link name, 0 if the name is not one.
uint64_t SkLookupCookie(std::string_view name);
// File names in a directory (empty if it does not exist).
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);
bool PathExists(const std::string& path);

// bpf_obj_get, with BPF_F_RDONLY when `read_only` (maps only: links need O_RDWR).
absl::StatusOr<Fd> ObjGet(const std::string& path, bool read_only);

absl::StatusOr<bpf_link_info> LinkInfo(int link_fd, std::string_view name);
absl::StatusOr<bpf_map_info> MapInfo(int map_fd, std::string_view name);
// A link whose cgroup or netns is gone: the kernel detached it, it only waits to be unpinned.
bool LinkDefunct(const bpf_link_info& info);

// Every key of a map, in iteration order.
template <typename K>
absl::StatusOr<std::vector<K>> MapKeys(int fd, std::string_view name) {
  std::vector<K> keys;
  K key{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &key) == 0) {
    keys.push_back(key);
    prev = &keys.back();
  }
  if (errno != ENOENT) return ErrnoError("bpf_map_get_next_key", name);
  return keys;
}

// Every entry; an entry deleted between the key walk and its lookup (LRU) is skipped.
template <typename K, typename V>
absl::StatusOr<std::vector<std::pair<K, V>>> MapDump(int fd, std::string_view name) {
  ZM_ASSIGN_OR_RETURN(std::vector<K> keys, MapKeys<K>(fd, name));
  std::vector<std::pair<K, V>> out;
  out.reserve(keys.size());
  for (const K& key : keys) {
    V value{};
    if (bpf_map_lookup_elem(fd, &key, &value) == 0) {
      out.emplace_back(key, value);
    } else if (errno != ENOENT) {
      return ErrnoError("bpf_map_lookup_elem", name);
    }
  }
  return out;
}

}  // namespace zm::bpf

#include "bpf/pinned_maps.h"

#include <bpf/libbpf.h>

#include <cstring>

#include "bpf/bpf_util.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::bpf {
namespace {

template <typename V>
absl::StatusOr<V> LookupZero(int fd, std::string_view name) {
  uint32_t key = 0;
  V value{};
  if (bpf_map_lookup_elem(fd, &key, &value) != 0) return ErrnoError("bpf_map_lookup_elem", name);
  return value;
}

absl::StatusOr<std::string> ProgName(uint32_t prog_id) {
  Fd fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd) return ErrnoError("bpf_prog_get_fd_by_id", StrCat("prog ", prog_id));
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) {
    return ErrnoError("bpf_obj_get_info_by_fd", StrCat("prog ", prog_id));
  }
  return std::string(info.name);
}

absl::StatusOr<PinnedLinkStatus> ReadLink(const std::string& dir, const std::string& name) {
  ZM_ASSIGN_OR_RETURN(Fd fd, ObjGet(StrCat(dir, "/", name), /*read_only=*/false));
  ZM_ASSIGN_OR_RETURN(bpf_link_info info, LinkInfo(fd.get(), name));
  PinnedLinkStatus s;
  s.name = name;
  s.link_id = info.id;
  s.prog_id = info.prog_id;
  if (info.type == BPF_LINK_TYPE_CGROUP) {
    s.attach_type = info.cgroup.attach_type;
    s.cgroup_id = info.cgroup.cgroup_id;
  } else if (info.type == BPF_LINK_TYPE_NETNS) {
    s.attach_type = info.netns.attach_type;
    s.netns_ino = info.netns.netns_ino;
  }
  s.defunct = LinkDefunct(info);
  ZM_ASSIGN_OR_RETURN(s.prog_name, ProgName(info.prog_id));
  return s;
}

// Entries of a map: arrays are always full; hashes are counted by walking the keys.
absl::StatusOr<uint32_t> CountEntries(int fd, const bpf_map_info& info, std::string_view name) {
  if (info.type == BPF_MAP_TYPE_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_ARRAY) {
    return info.max_entries;
  }
  std::vector<uint8_t> key(info.key_size), next(info.key_size);
  uint32_t n = 0;
  for (void* prev = nullptr; bpf_map_get_next_key(fd, prev, next.data()) == 0; ++n) {
    key.swap(next);
    prev = key.data();
  }
  if (errno != ENOENT) return ErrnoError("bpf_map_get_next_key", name);
  return n;
}

}  // namespace

absl::StatusOr<PinnedMaps> PinnedMaps::Open(const std::string& pin_dir) {
  if (!PathExists(pin_dir)) return absl::NotFoundError(StrCat(pin_dir, ": no pin dir"));
  PinnedMaps maps(pin_dir);
  for (std::string_view name : kPinnedMaps) {
    std::string path = StrCat(pin_dir, "/", name);
    if (!PathExists(path)) continue;
    ZM_ASSIGN_OR_RETURN(Fd fd, ObjGet(path, /*read_only=*/true));
    maps.maps_.emplace(std::string(name), std::move(fd));
  }
  return maps;
}

absl::StatusOr<int> PinnedMaps::Map(std::string_view name) const {
  auto it = maps_.find(name);
  if (it == maps_.end()) return absl::NotFoundError(StrCat(pin_dir_, "/", name, ": not pinned"));
  return it->second.get();
}

absl::StatusOr<zm_config> PinnedMaps::Config() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_config"));
  return LookupZero<zm_config>(fd, "zm_config");
}

absl::StatusOr<zm_meta> PinnedMaps::Meta() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_meta"));
  return LookupZero<zm_meta>(fd, "zm_meta");
}

absl::StatusOr<std::vector<std::pair<uint64_t, zm_netns_val>>> PinnedMaps::Netns() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_netns"));
  return MapDump<uint64_t, zm_netns_val>(fd, "zm_netns");
}

absl::StatusOr<std::vector<std::pair<zm_addr, zm_pod_ip_val>>> PinnedMaps::PodIps() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_pod_ip"));
  return MapDump<zm_addr, zm_pod_ip_val>(fd, "zm_pod_ip");
}

absl::StatusOr<std::vector<std::pair<uint32_t, std::string>>> PinnedMaps::PodNames() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_pod_name"));
  using Entries = std::vector<std::pair<uint32_t, zm_pod_name>>;
  ZM_ASSIGN_OR_RETURN(Entries entries, (MapDump<uint32_t, zm_pod_name>(fd, "zm_pod_name")));
  std::vector<std::pair<uint32_t, std::string>> out;
  for (const auto& [index, value] : entries) {
    out.emplace_back(index, std::string(value.name, strnlen(value.name, sizeof(value.name))));
  }
  return out;
}

absl::StatusOr<std::vector<zm_port_key>> PinnedMaps::ExcludedPorts() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_ports_excl"));
  return MapKeys<zm_port_key>(fd, "zm_ports_excl");
}

absl::StatusOr<std::vector<std::pair<zm_orig_key, zm_orig>>> PinnedMaps::OrigDst() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_orig_dst"));
  return MapDump<zm_orig_key, zm_orig>(fd, "zm_orig_dst");
}

absl::StatusOr<std::vector<std::pair<zm_tuple, zm_bypass_val>>> PinnedMaps::Bypass() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_bypass"));
  return MapDump<zm_tuple, zm_bypass_val>(fd, "zm_bypass");
}

absl::StatusOr<std::vector<ListenerEntry>> PinnedMaps::Listeners() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_listeners"));
  ZM_ASSIGN_OR_RETURN(std::vector<zm_listener_key> keys,
                      MapKeys<zm_listener_key>(fd, "zm_listeners"));
  std::vector<ListenerEntry> out;
  for (const zm_listener_key& key : keys) {
    ListenerEntry e{key, std::nullopt};
    uint64_t cookie = 0;
    // A SOCKHASH lookup returns the socket cookie (value size 8); it is optional here.
    if (bpf_map_lookup_elem(fd, &key, &cookie) == 0) e.socket_cookie = cookie;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<std::vector<uint64_t>> PinnedMaps::Stats() const {
  ZM_ASSIGN_OR_RETURN(int fd, Map("zm_stats"));
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return ErrnoError("libbpf_num_possible_cpus", "zm_stats", -cpus);
  std::vector<uint64_t> totals(ZM_R_MAX), per_cpu(cpus);
  for (uint32_t reason = 0; reason < ZM_R_MAX; ++reason) {
    if (bpf_map_lookup_elem(fd, &reason, per_cpu.data()) != 0) {
      return ErrnoError("bpf_map_lookup_elem", "zm_stats");
    }
    for (uint64_t n : per_cpu) totals[reason] += n;
  }
  return totals;
}

absl::StatusOr<std::vector<PinnedLinkStatus>> PinnedMaps::Links() const {
  std::string dir = LinksDir(pin_dir_);
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
  std::vector<PinnedLinkStatus> out;
  for (const std::string& name : names) {
    ZM_ASSIGN_OR_RETURN(PinnedLinkStatus s, ReadLink(dir, name));
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::vector<MapFill>> PinnedMaps::Fill() const {
  std::vector<MapFill> out;
  for (const auto& [name, fd] : maps_) {
    ZM_ASSIGN_OR_RETURN(bpf_map_info info, MapInfo(fd.get(), name));
    ZM_ASSIGN_OR_RETURN(uint32_t entries, CountEntries(fd.get(), info, name));
    out.push_back(MapFill{name, entries, info.max_entries});
  }
  return out;
}

}  // namespace zm::bpf

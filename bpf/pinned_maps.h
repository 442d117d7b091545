#pragma once
// Read-only view of a pin dir for zmeshctl: works with no agent running and never changes
// anything (maps are opened BPF_F_RDONLY; links must be opened read-write, only read).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/fd.h"
#include "zmesh/abi.h"

namespace zm::bpf {

struct PinnedLinkStatus {
  std::string name;  // file name under links/: "connect4", "sk_lookup_<cookie>"
  uint32_t link_id = 0;
  uint32_t prog_id = 0;
  std::string prog_name;
  uint32_t attach_type = 0;  // enum bpf_attach_type
  uint64_t cgroup_id = 0;    // cgroup links
  uint32_t netns_ino = 0;    // netns (sk_lookup) links
  bool defunct = false;      // its cgroup or netns is gone
};

struct MapFill {
  std::string name;
  uint32_t entries = 0;
  uint32_t max_entries = 0;
};

struct ListenerEntry {
  zm_listener_key key;
  std::optional<uint64_t> socket_cookie;  // when the kernel lets us read it
};

class PinnedMaps {
 public:
  // Opens every map pin present in `pin_dir`; missing maps fail only when asked for.
  static absl::StatusOr<PinnedMaps> Open(const std::string& pin_dir);

  absl::StatusOr<zm_config> Config() const;
  absl::StatusOr<zm_meta> Meta() const;
  absl::StatusOr<std::vector<std::pair<uint64_t, zm_netns_val>>> Netns() const;
  absl::StatusOr<std::vector<std::pair<zm_addr, zm_pod_ip_val>>> PodIps() const;
  absl::StatusOr<std::vector<std::pair<uint32_t, std::string>>> PodNames() const;
  absl::StatusOr<std::vector<zm_port_key>> ExcludedPorts() const;
  absl::StatusOr<std::vector<std::pair<zm_orig_key, zm_orig>>> OrigDst() const;
  absl::StatusOr<std::vector<std::pair<zm_tuple, zm_bypass_val>>> Bypass() const;
  absl::StatusOr<std::vector<ListenerEntry>> Listeners() const;
  // zm_stats summed over CPUs, indexed by reason (ZM_R_MAX entries).
  absl::StatusOr<std::vector<uint64_t>> Stats() const;
  absl::StatusOr<std::vector<PinnedLinkStatus>> Links() const;
  absl::StatusOr<std::vector<MapFill>> Fill() const;

 private:
  explicit PinnedMaps(std::string pin_dir) : pin_dir_(std::move(pin_dir)) {}
  absl::StatusOr<int> Map(std::string_view name) const;

  std::string pin_dir_;
  std::map<std::string, Fd, std::less<>> maps_;
};

}  // namespace zm::bpf

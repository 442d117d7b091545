#pragma once
// The real Datapath: the zmesh BPF object loaded with its maps and links pinned under
// /sys/fs/bpf/zmesh/<node>/ (DESIGN-ebpf.md "Lifecycle"). Pins outlive the agent: traffic
// keeps flowing while it restarts, and a new agent upgrades the programs in place.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bpf/datapath.h"

struct zmesh_bpf;
struct bpf_program;

namespace zm::bpf {

// Mounts bpffs at `mount_point` unless one is mounted there already.
absl::Status EnsureBpffs(const std::string& mount_point = "/sys/fs/bpf");

class PinnedDatapath : public Datapath {
 public:
  struct Options {
    std::string pin_dir;      // /sys/fs/bpf/zmesh/<node>
    std::string cgroup_root;  // the host's cgroup v2 root (the node's subtree in the lab)
    std::string build_id;     // written to zm_meta
  };

  // Agent start: loads the object reusing the pinned maps (or migrating those of another
  // ABI), then creates or updates in place the four cgroup links and every pinned sk_lookup
  // link.
  static absl::StatusOr<std::unique_ptr<PinnedDatapath>> Open(const Options& options);
  // `zmesh-agent uninstall`: detaches and unpins every link and map, removes the pin dir.
  static absl::Status Uninstall(const std::string& pin_dir);

  ~PinnedDatapath() override;

  // True when pinned maps of another ABI were dropped: every pod must be enrolled again.
  bool migrated() const { return migrated_; }
  // Unpins the sk_lookup links whose netns is gone; returns their cookies.
  absl::StatusOr<std::vector<uint64_t>> GcDefunctSkLookupLinks();

  absl::Status WriteConfig(const zm_config& config) override;
  absl::StatusOr<zm_config> ReadConfig() override;
  absl::Status PutListener(const IpAddr& pod_ip, uint32_t role, int listener_fd) override;
  absl::Status DeleteListener(const IpAddr& pod_ip, uint32_t role) override;
  absl::Status PutPodIp(const IpAddr& ip, const zm_pod_ip_val& value) override;
  absl::Status DeletePodIp(const IpAddr& ip) override;
  absl::StatusOr<std::map<IpAddr, zm_pod_ip_val>> ListPodIps() override;
  absl::Status PutPodName(uint32_t pod_index, std::string_view name) override;
  absl::Status DeletePodName(uint32_t pod_index) override;
  absl::StatusOr<std::map<uint32_t, std::string>> ListPodNames() override;
  absl::Status PutExcludedPort(const zm_port_key& key) override;
  absl::Status DeleteExcludedPorts(uint32_t pod_index) override;
  absl::Status PutNetns(uint64_t cookie, const zm_netns_val& value) override;
  absl::Status DeleteNetns(uint64_t cookie) override;
  absl::StatusOr<std::map<uint64_t, zm_netns_val>> ListNetns() override;
  absl::Status AttachSkLookup(uint64_t cookie, int netns_fd) override;
  absl::Status DetachSkLookup(uint64_t cookie) override;
  absl::StatusOr<std::vector<uint64_t>> ListSkLookupLinks() override;

 private:
  struct SkelDeleter {
    void operator()(zmesh_bpf* skel) const;
  };
  using Skel = std::unique_ptr<zmesh_bpf, SkelDeleter>;

  PinnedDatapath(Options options, Skel skel, bool migrated);

  absl::Status WriteMeta();
  absl::Status AttachCgroupLinks();
  absl::Status UpdateSkLookupLinks();
  absl::Status Put(std::string_view map, const void* key, const void* value);
  absl::Status Delete(std::string_view map, const void* key);
  int MapFd(std::string_view map) const;
  std::string LinkPath(std::string_view name) const;

  Options options_;
  Skel skel_;
  bool migrated_;
};

}  // namespace zm::bpf

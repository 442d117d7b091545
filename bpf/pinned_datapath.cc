#include "bpf/pinned_datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>

#include "bpf/bpf_util.h"
#include "bpf/zmesh.skel.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"

namespace zm::bpf {
namespace {

struct LinkDeleter {
  // Closes our fd only: a pinned link stays attached (bpf_link__detach detaches).
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

int LibbpfPrint(libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), format, args);
  std::string_view line(buf);
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (level == LIBBPF_WARN) {
    Log("bpf").warn("libbpf: {}", line);
  } else {
    Log("bpf").debug("libbpf: {}", line);
  }
  return 0;
}

absl::Status MkdirP(const std::string& path) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("mkdir", part);
  }
  return absl::OkStatus();
}

absl::Status UnlinkIfExists(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", path);
  return absl::OkStatus();
}

// The ABI gate: the abi stored in a pinned zm_meta, or nullopt if there is none. A value
// of another size is another ABI too (reported as 0): never read it into our struct.
absl::StatusOr<std::optional<uint32_t>> PinnedAbi(const std::string& pin_dir) {
  std::string path = pin_dir + "/zm_meta";
  if (!PathExists(path)) return std::nullopt;
  ZM_ASSIGN_OR_RETURN(Fd fd, ObjGet(path, /*read_only=*/true));
  ZM_ASSIGN_OR_RETURN(bpf_map_info info, MapInfo(fd.get(), "zm_meta"));
  if (info.value_size != sizeof(zm_meta) || info.key_size != sizeof(uint32_t)) return 0u;
  uint32_t key = 0;
  zm_meta meta{};
  if (bpf_map_lookup_elem(fd.get(), &key, &meta) != 0) {
    return ErrnoError("bpf_map_lookup_elem", "zm_meta");
  }
  return meta.abi;
}

// Unpins the maps of another ABI so that loading creates fresh ones; true if it did.
absl::StatusOr<bool> MigrateIfOtherAbi(const std::string& pin_dir) {
  ZM_ASSIGN_OR_RETURN(std::optional<uint32_t> abi, PinnedAbi(pin_dir));
  if (!abi || *abi == ZM_ABI_VERSION) return false;
  Log("bpf").warn("pinned maps in {} have ABI {}, this build {}: migrating (all pods re-enroll)",
                  pin_dir, *abi, ZM_ABI_VERSION);
  for (std::string_view map : kPinnedMaps) {
    ZM_RETURN_IF_ERROR(UnlinkIfExists(StrCat(pin_dir, "/", map)));
  }
  return true;
}

bpf_program* CgroupProg(zmesh_bpf* skel, std::string_view name) {
  if (name == "connect4") return skel->progs.zm_connect4;
  if (name == "connect6") return skel->progs.zm_connect6;
  if (name == "sockops") return skel->progs.zm_sockops;
  return skel->progs.zm_getsockopt;
}

absl::StatusOr<LinkPtr> OpenLink(const std::string& path) {
  LinkPtr link(bpf_link__open(path.c_str()));
  if (!link) return ErrnoError("bpf_link__open", path);
  return link;
}

absl::Status PinLink(bpf_link* link, const std::string& path) {
  int err = bpf_link__pin(link, path.c_str());
  if (err) return ErrnoError("bpf_link__pin", path, -err);
  return absl::OkStatus();
}

absl::Status UpdateLink(bpf_link* link, bpf_program* prog, const std::string& path) {
  int err = bpf_link__update_program(link, prog);
  if (err) return ErrnoError("bpf_link__update_program", path, -err);
  return absl::OkStatus();
}

// Detaches a pinned link (whatever still holds it) and removes the pin.
absl::Status DetachAndUnpin(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(LinkPtr link, OpenLink(path));
  // ENOLINK / EINVAL: already detached by the kernel (defunct); only the pin is left.
  if (bpf_link__detach(link.get()) != 0 && errno != ENOLINK && errno != EINVAL) {
    return ErrnoError("bpf_link_detach", path);
  }
  return UnlinkIfExists(path);
}

absl::StatusOr<uint64_t> CgroupId(const std::string& cgroup_dir) {
  struct stat st {};
  // On cgroup v2 a cgroup's inode number is its id.
  if (::stat(cgroup_dir.c_str(), &st) != 0) return ErrnoError("stat", cgroup_dir);
  return static_cast<uint64_t>(st.st_ino);
}

// The pinned link at `path` when it is attached to `cgroup_id`; nullptr otherwise (a stale
// pin, a link detached by the kernel or attached elsewhere is removed).
absl::StatusOr<LinkPtr> ReusableCgroupLink(const std::string& path, uint64_t cgroup_id) {
  if (!PathExists(path)) return nullptr;
  ZM_ASSIGN_OR_RETURN(LinkPtr link, OpenLink(path));
  ZM_ASSIGN_OR_RETURN(bpf_link_info info, LinkInfo(bpf_link__fd(link.get()), path));
  if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id) return link;
  Log("bpf").warn("link {} is attached to cgroup {}, want {}: replacing it", path,
                  info.cgroup.cgroup_id, cgroup_id);
  link.reset();
  ZM_RETURN_IF_ERROR(DetachAndUnpin(path));
  return nullptr;
}

}  // namespace

absl::Status EnsureBpffs(const std::string& mount_point) {
  struct statfs st {};
  if (::statfs(mount_point.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) {
    return absl::OkStatus();
  }
  ZM_RETURN_IF_ERROR(MkdirP(mount_point));
  if (::mount("bpf", mount_point.c_str(), "bpf", 0, "mode=0700") != 0) {
    return ErrnoError("mount bpffs", mount_point);
  }
  Log("bpf").info("mounted bpffs at {}", mount_point);
  return absl::OkStatus();
}

void PinnedDatapath::SkelDeleter::operator()(zmesh_bpf* skel) const { zmesh_bpf__destroy(skel); }

PinnedDatapath::PinnedDatapath(Options options, Skel skel, bool migrated)
    : options_(std::move(options)), skel_(std::move(skel)), migrated_(migrated) {}

PinnedDatapath::~PinnedDatapath() = default;

absl::StatusOr<std::unique_ptr<PinnedDatapath>> PinnedDatapath::Open(const Options& options) {
  static std::once_flag print_once;
  std::call_once(print_once, [] { libbpf_set_print(LibbpfPrint); });
  ZM_RETURN_IF_ERROR(EnsureBpffs());
  ZM_RETURN_IF_ERROR(MkdirP(LinksDir(options.pin_dir)));
  ZM_ASSIGN_OR_RETURN(bool migrated, MigrateIfOtherAbi(options.pin_dir));

  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = options.pin_dir.c_str());
  Skel skel(zmesh_bpf__open_opts(&opts));
  if (!skel) return ErrnoError("zmesh_bpf__open_opts", options.pin_dir);
  if (int err = zmesh_bpf__load(skel.get()); err != 0) {
    return ErrnoError("zmesh_bpf__load", options.pin_dir, -err);
  }
  std::unique_ptr<PinnedDatapath> dp(new PinnedDatapath(options, std::move(skel), migrated));
  ZM_RETURN_IF_ERROR(dp->WriteMeta());
  ZM_RETURN_IF_ERROR(dp->AttachCgroupLinks());
  ZM_RETURN_IF_ERROR(dp->UpdateSkLookupLinks());
  return dp;
}

absl::Status PinnedDatapath::WriteMeta() {
  zm_meta meta{};
  meta.abi = ZM_ABI_VERSION;
  std::strncpy(meta.build_id, options_.build_id.c_str(), sizeof(meta.build_id) - 1);
  uint32_t key = 0;
  return Put("zm_meta", &key, &meta);
}

absl::Status PinnedDatapath::AttachCgroupLinks() {
  ZM_ASSIGN_OR_RETURN(uint64_t cgroup_id, CgroupId(options_.cgroup_root));
  Fd cgroup(::open(options_.cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) return ErrnoError("open", options_.cgroup_root);
  for (std::string_view name : kCgroupLinks) {
    bpf_program* prog = CgroupProg(skel_.get(), name);
    std::string path = LinkPath(name);
    ZM_ASSIGN_OR_RETURN(LinkPtr link, ReusableCgroupLink(path, cgroup_id));
    if (link) {  // the in-place upgrade: same link id, new program
      ZM_RETURN_IF_ERROR(UpdateLink(link.get(), prog, path));
      continue;
    }
    link.reset(bpf_program__attach_cgroup(prog, cgroup.get()));
    if (!link)
      return ErrnoError("bpf_program__attach_cgroup", StrCat(name, " on ", options_.cgroup_root));
    ZM_RETURN_IF_ERROR(PinLink(link.get(), path));
  }
  return absl::OkStatus();
}

absl::Status PinnedDatapath::UpdateSkLookupLinks() {
  ZM_ASSIGN_OR_RETURN(std::vector<uint64_t> cookies, ListSkLookupLinks());
  for (uint64_t cookie : cookies) {
    std::string path = LinkPath(SkLookupLinkName(cookie));
    ZM_ASSIGN_OR_RETURN(LinkPtr link, OpenLink(path));
    ZM_ASSIGN_OR_RETURN(bpf_link_info info, LinkInfo(bpf_link__fd(link.get()), path));
    if (LinkDefunct(info)) continue;  // GcDefunctSkLookupLinks removes it
    ZM_RETURN_IF_ERROR(UpdateLink(link.get(), skel_->progs.zm_sk_lookup, path));
  }
  return absl::OkStatus();
}

absl::Status PinnedDatapath::Uninstall(const std::string& pin_dir) {
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> links, ListDir(LinksDir(pin_dir)));
  for (const std::string& name : links) {
    ZM_RETURN_IF_ERROR(DetachAndUnpin(StrCat(LinksDir(pin_dir), "/", name)));
  }
  for (std::string_view map : kPinnedMaps) {
    ZM_RETURN_IF_ERROR(UnlinkIfExists(StrCat(pin_dir, "/", map)));
  }
  for (const std::string& dir : {LinksDir(pin_dir), pin_dir}) {
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return ErrnoError("rmdir", dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> PinnedDatapath::GcDefunctSkLookupLinks() {
  ZM_ASSIGN_OR_RETURN(std::vector<uint64_t> cookies, ListSkLookupLinks());
  std::vector<uint64_t> removed;
  for (uint64_t cookie : cookies) {
    std::string path = LinkPath(SkLookupLinkName(cookie));
    ZM_ASSIGN_OR_RETURN(LinkPtr link, OpenLink(path));
    ZM_ASSIGN_OR_RETURN(bpf_link_info info, LinkInfo(bpf_link__fd(link.get()), path));
    if (!LinkDefunct(info)) continue;
    ZM_RETURN_IF_ERROR(UnlinkIfExists(path));
    Log("bpf").info("removed defunct sk_lookup link {} (netns gone)", path);
    removed.push_back(cookie);
  }
  return removed;
}

absl::Status PinnedDatapath::AttachSkLookup(uint64_t cookie, int netns_fd) {
  std::string path = LinkPath(SkLookupLinkName(cookie));
  bpf_program* prog = skel_->progs.zm_sk_lookup;
  if (PathExists(path)) {
    ZM_ASSIGN_OR_RETURN(LinkPtr link, OpenLink(path));
    ZM_ASSIGN_OR_RETURN(bpf_link_info info, LinkInfo(bpf_link__fd(link.get()), path));
    if (!LinkDefunct(info)) return UpdateLink(link.get(), prog, path);
    ZM_RETURN_IF_ERROR(UnlinkIfExists(path));  // cookies are never reused: cannot happen
  }
  LinkPtr link(bpf_program__attach_netns(prog, netns_fd));
  if (!link) return ErrnoError("bpf_program__attach_netns", path);
  return PinLink(link.get(), path);
}

absl::Status PinnedDatapath::DetachSkLookup(uint64_t cookie) {
  std::string path = LinkPath(SkLookupLinkName(cookie));
  if (!PathExists(path)) return absl::OkStatus();
  return DetachAndUnpin(path);
}

absl::StatusOr<std::vector<uint64_t>> PinnedDatapath::ListSkLookupLinks() {
  ZM_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(LinksDir(options_.pin_dir)));
  std::vector<uint64_t> cookies;
  for (const std::string& name : names) {
    if (uint64_t cookie = SkLookupCookie(name)) cookies.push_back(cookie);
  }
  return cookies;
}

std::string PinnedDatapath::LinkPath(std::string_view name) const {
  return StrCat(LinksDir(options_.pin_dir), "/", name);
}

int PinnedDatapath::MapFd(std::string_view map) const {
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, std::string(map).c_str());
  return m ? bpf_map__fd(m) : -1;
}

absl::Status PinnedDatapath::Put(std::string_view map, const void* key, const void* value) {
  if (bpf_map_update_elem(MapFd(map), key, value, BPF_ANY) != 0) {
    return ErrnoError("bpf_map_update_elem", map);
  }
  return absl::OkStatus();
}

absl::Status PinnedDatapath::Delete(std::string_view map, const void* key) {
  // Deleting what is not there is not an error: un-enroll must be idempotent.
  if (bpf_map_delete_elem(MapFd(map), key) != 0 && errno != ENOENT) {
    return ErrnoError("bpf_map_delete_elem", map);
  }
  return absl::OkStatus();
}

absl::Status PinnedDatapath::WriteConfig(const zm_config& config) {
  uint32_t key = 0;
  return Put("zm_config", &key, &config);
}

absl::StatusOr<zm_config> PinnedDatapath::ReadConfig() {
  uint32_t key = 0;
  zm_config config{};
  if (bpf_map_lookup_elem(MapFd("zm_config"), &key, &config) != 0) {
    return ErrnoError("bpf_map_lookup_elem", "zm_config");
  }
  return config;
}

namespace {
zm_listener_key ListenerKey(const IpAddr& ip, uint32_t role) {
  zm_listener_key key{};
  std::memcpy(key.ip, ip.bytes.data(), sizeof(key.ip));
  key.role = role;
  return key;
}
zm_addr Addr(const IpAddr& ip) {
  zm_addr a{};
  std::memcpy(a.ip, ip.bytes.data(), sizeof(a.ip));
  return a;
}
}  // namespace

absl::Status PinnedDatapath::PutListener(const IpAddr& pod_ip, uint32_t role, int listener_fd) {
  zm_listener_key key = ListenerKey(pod_ip, role);
  uint64_t fd = static_cast<uint64_t>(listener_fd);  // value size 8: the kernel reads a u64
  return Put("zm_listeners", &key, &fd);
}

absl::Status PinnedDatapath::DeleteListener(const IpAddr& pod_ip, uint32_t role) {
  zm_listener_key key = ListenerKey(pod_ip, role);
  return Delete("zm_listeners", &key);
}

absl::Status PinnedDatapath::PutPodIp(const IpAddr& ip, const zm_pod_ip_val& value) {
  zm_addr key = Addr(ip);
  return Put("zm_pod_ip", &key, &value);
}

absl::Status PinnedDatapath::DeletePodIp(const IpAddr& ip) {
  zm_addr key = Addr(ip);
  return Delete("zm_pod_ip", &key);
}

absl::StatusOr<std::map<IpAddr, zm_pod_ip_val>> PinnedDatapath::ListPodIps() {
  using Entries = std::vector<std::pair<zm_addr, zm_pod_ip_val>>;
  ZM_ASSIGN_OR_RETURN(Entries entries,
                      (MapDump<zm_addr, zm_pod_ip_val>(MapFd("zm_pod_ip"), "zm_pod_ip")));
  std::map<IpAddr, zm_pod_ip_val> out;
  for (const auto& [key, value] : entries) out[IpAddr::FromV6(key.ip)] = value;
  return out;
}

absl::Status PinnedDatapath::PutPodName(uint32_t pod_index, std::string_view name) {
  if (name.size() >= ZM_POD_NAME_LEN) {
    return absl::InvalidArgumentError(StrCat("zm_pod_name: name too long: ", name));
  }
  zm_pod_name value{};
  std::memcpy(value.name, name.data(), name.size());
  return Put("zm_pod_name", &pod_index, &value);
}

absl::Status PinnedDatapath::DeletePodName(uint32_t pod_index) {
  return Delete("zm_pod_name", &pod_index);
}

absl::StatusOr<std::map<uint32_t, std::string>> PinnedDatapath::ListPodNames() {
  using Entries = std::vector<std::pair<uint32_t, zm_pod_name>>;
  ZM_ASSIGN_OR_RETURN(Entries entries,
                      (MapDump<uint32_t, zm_pod_name>(MapFd("zm_pod_name"), "zm_pod_name")));
  std::map<uint32_t, std::string> out;
  for (const auto& [key, value] : entries) {
    out[key] = std::string(value.name, strnlen(value.name, sizeof(value.name)));
  }
  return out;
}

absl::Status PinnedDatapath::PutExcludedPort(const zm_port_key& key) {
  uint32_t one = 1;
  return Put("zm_ports_excl", &key, &one);
}

absl::Status PinnedDatapath::DeleteExcludedPorts(uint32_t pod_index) {
  ZM_ASSIGN_OR_RETURN(std::vector<zm_port_key> keys,
                      MapKeys<zm_port_key>(MapFd("zm_ports_excl"), "zm_ports_excl"));
  for (const zm_port_key& key : keys) {
    if (key.pod_index == pod_index) ZM_RETURN_IF_ERROR(Delete("zm_ports_excl", &key));
  }
  return absl::OkStatus();
}

absl::Status PinnedDatapath::PutNetns(uint64_t cookie, const zm_netns_val& value) {
  return Put("zm_netns", &cookie, &value);
}

absl::Status PinnedDatapath::DeleteNetns(uint64_t cookie) { return Delete("zm_netns", &cookie); }

absl::StatusOr<std::map<uint64_t, zm_netns_val>> PinnedDatapath::ListNetns() {
  using Entries = std::vector<std::pair<uint64_t, zm_netns_val>>;
  ZM_ASSIGN_OR_RETURN(Entries entries,
                      (MapDump<uint64_t, zm_netns_val>(MapFd("zm_netns"), "zm_netns")));
  return std::map<uint64_t, zm_netns_val>(entries.begin(), entries.end());
}

}  // namespace zm::bpf

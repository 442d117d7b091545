#pragma once
// `zmeshctl bpf ...`: the capture layer's pinned state in words. The pure part: it turns
// what was read from the pins (BpfState) into tables and JSON, naming pods instead of
// cookies and indexes, so it is testable without a kernel.

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "bpf/pinned_maps.h"

namespace zm::cli {

// Everything read from one node's pin dir; each part is optional so one unreadable map
// does not hide the rest (its error is kept instead).
struct BpfState {
  std::string pin_dir;
  std::optional<zm_config> config;
  std::optional<zm_meta> meta;
  std::vector<std::pair<uint64_t, zm_netns_val>> netns;
  std::vector<std::pair<zm_addr, zm_pod_ip_val>> pod_ips;
  std::vector<std::pair<uint32_t, std::string>> pod_names;
  std::vector<zm_port_key> excluded;
  std::vector<std::pair<zm_orig_key, zm_orig>> orig_dst;
  std::vector<std::pair<zm_tuple, zm_bypass_val>> bypass;
  std::vector<bpf::ListenerEntry> listeners;
  std::vector<uint64_t> stats;
  std::vector<bpf::PinnedLinkStatus> links;
  std::vector<bpf::MapFill> fill;
  std::vector<std::string> errors;  // "zm_bypass: bpf_obj_get: ENOENT", ...
  uint64_t now_ns = 0;              // CLOCK_MONOTONIC, for ages
};

// Reads every part it can from the pins.
BpfState ReadBpfState(const std::string& pin_dir);

// One renderer per subcommand: a table, or the JSON object of the same content.
std::string RenderStatus(const BpfState& s);
nlohmann::json StatusJson(const BpfState& s);
std::string RenderPods(const BpfState& s);
nlohmann::json PodsJson(const BpfState& s);
std::string RenderOrigDst(const BpfState& s);
nlohmann::json OrigDstJson(const BpfState& s);
std::string RenderBypass(const BpfState& s);
nlohmann::json BypassJson(const BpfState& s);
std::string RenderStats(const BpfState& s);
nlohmann::json StatsJson(const BpfState& s);
std::string RenderConfig(const BpfState& s);
nlohmann::json ConfigJson(const BpfState& s);

// "cgroup_inet4_connect", "sk_lookup", ...
std::string AttachTypeName(uint32_t attach_type);

}  // namespace zm::cli

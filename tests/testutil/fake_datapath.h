#pragma once
// An in-memory Datapath that records every operation in order, so tests can check the
// enrollment order contract without a kernel.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "bpf/datapath.h"
#include "common/base/strings.h"

namespace zm::testutil {

class FakeDatapath : public bpf::Datapath {
 public:
  std::vector<std::string> ops;
  std::string fail_on;  // an op name ("PutNetns") that fails once
  std::map<IpAddr, zm_pod_ip_val> pod_ips;
  std::map<uint32_t, std::string> names;
  std::map<uint64_t, zm_netns_val> netns;
  std::set<uint64_t> links;
  std::map<std::pair<IpAddr, uint32_t>, int> listeners;
  std::set<std::tuple<uint32_t, uint16_t, uint8_t>> excluded;
  zm_config config{};

  absl::Status Op(const std::string& name, const std::string& arg) {
    ops.push_back(StrCat(name, " ", arg));
    if (!fail_on.empty() && fail_on == name) {
      fail_on.clear();
      return absl::InternalError(StrCat("injected failure in ", name));
    }
    return absl::OkStatus();
  }

  absl::Status WriteConfig(const zm_config& c) override {
    config = c;
    return Op("WriteConfig", "");
  }
  absl::StatusOr<zm_config> ReadConfig() override { return config; }
  absl::Status PutListener(const IpAddr& ip, uint32_t role, int fd) override {
    if (auto st = Op("PutListener", ip.ToString()); !st.ok()) return st;
    listeners[{ip, role}] = fd;
    return absl::OkStatus();
  }
  absl::Status DeleteListener(const IpAddr& ip, uint32_t role) override {
    if (auto st = Op("DeleteListener", ip.ToString()); !st.ok()) return st;
    return listeners.erase({ip, role}) ? absl::OkStatus() : absl::NotFoundError("no listener");
  }
  absl::Status PutPodIp(const IpAddr& ip, const zm_pod_ip_val& v) override {
    if (auto st = Op("PutPodIp", ip.ToString()); !st.ok()) return st;
    pod_ips[ip] = v;
    return absl::OkStatus();
  }
  absl::Status DeletePodIp(const IpAddr& ip) override {
    if (auto st = Op("DeletePodIp", ip.ToString()); !st.ok()) return st;
    return pod_ips.erase(ip) ? absl::OkStatus() : absl::NotFoundError("no pod ip");
  }
  absl::StatusOr<std::map<IpAddr, zm_pod_ip_val>> ListPodIps() override { return pod_ips; }
  absl::Status PutPodName(uint32_t index, std::string_view name) override {
    if (auto st = Op("PutPodName", std::string(name)); !st.ok()) return st;
    names[index] = std::string(name);
    return absl::OkStatus();
  }
  absl::Status DeletePodName(uint32_t index) override {
    if (auto st = Op("DeletePodName", std::to_string(index)); !st.ok()) return st;
    return names.erase(index) ? absl::OkStatus() : absl::NotFoundError("no name");
  }
  absl::StatusOr<std::map<uint32_t, std::string>> ListPodNames() override { return names; }
  absl::Status PutExcludedPort(const zm_port_key& k) override {
    if (auto st = Op("PutExcludedPort", std::to_string(k.port)); !st.ok()) return st;
    excluded.insert({k.pod_index, k.port, k.direction});
    return absl::OkStatus();
  }
  absl::Status DeleteExcludedPorts(uint32_t index) override {
    if (auto st = Op("DeleteExcludedPorts", std::to_string(index)); !st.ok()) return st;
    std::erase_if(excluded, [&](const auto& t) { return std::get<0>(t) == index; });
    return absl::OkStatus();
  }
  absl::Status PutNetns(uint64_t cookie, const zm_netns_val& v) override {
    if (auto st = Op("PutNetns", std::to_string(cookie)); !st.ok()) return st;
    netns[cookie] = v;
    return absl::OkStatus();
  }
  absl::Status DeleteNetns(uint64_t cookie) override {
    if (auto st = Op("DeleteNetns", std::to_string(cookie)); !st.ok()) return st;
    return netns.erase(cookie) ? absl::OkStatus() : absl::NotFoundError("no netns");
  }
  absl::StatusOr<std::map<uint64_t, zm_netns_val>> ListNetns() override { return netns; }
  absl::Status AttachSkLookup(uint64_t cookie, int) override {
    if (auto st = Op("AttachSkLookup", std::to_string(cookie)); !st.ok()) return st;
    links.insert(cookie);
    return absl::OkStatus();
  }
  absl::Status DetachSkLookup(uint64_t cookie) override {
    if (auto st = Op("DetachSkLookup", std::to_string(cookie)); !st.ok()) return st;
    return links.erase(cookie) ? absl::OkStatus() : absl::NotFoundError("no link");
  }
  absl::StatusOr<std::vector<uint64_t>> ListSkLookupLinks() override {
    return std::vector<uint64_t>(links.begin(), links.end());
  }
};

}  // namespace zm::testutil

// The BPF object's view of every abi.h struct (its BTF) must match the C++ compiler's: a
// mismatch would corrupt every pinned map silently.

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "bpf/reasons.h"
#include "bpf/zmesh.skel.h"
#include "zmesh/abi.h"

namespace zm::bpf {
namespace {

struct Member {
  std::string name;
  size_t offset;
};

struct Layout {
  std::string name;
  size_t size;
  std::vector<Member> members;
};

#define ZM_M(type, field) \
  Member { #field, offsetof(type, field) }

std::vector<Layout> AbiLayouts() {
  return {
      {"zm_config",
       sizeof(zm_config),
       {ZM_M(zm_config, abi), ZM_M(zm_config, flags), ZM_M(zm_config, mark_ztunnel),
        ZM_M(zm_config, mark_delivery), ZM_M(zm_config, mark_mask), ZM_M(zm_config, ztunnel_tgid),
        ZM_M(zm_config, ztunnel_cgroup_id), ZM_M(zm_config, node_netns_cookie),
        ZM_M(zm_config, ztunnel_prev_tgid), ZM_M(zm_config, pad),
        ZM_M(zm_config, ztunnel_prev_cgroup_id)}},
      {"zm_meta",
       sizeof(zm_meta),
       {ZM_M(zm_meta, abi), ZM_M(zm_meta, pad), ZM_M(zm_meta, build_id)}},
      {"zm_addr", sizeof(zm_addr), {ZM_M(zm_addr, ip)}},
      {"zm_netns_val",
       sizeof(zm_netns_val),
       {ZM_M(zm_netns_val, flags), ZM_M(zm_netns_val, pod_index), ZM_M(zm_netns_val, ip4),
        ZM_M(zm_netns_val, pad), ZM_M(zm_netns_val, ip6)}},
      {"zm_pod_ip_val",
       sizeof(zm_pod_ip_val),
       {ZM_M(zm_pod_ip_val, netns_cookie), ZM_M(zm_pod_ip_val, pod_index),
        ZM_M(zm_pod_ip_val, flags)}},
      {"zm_pod_name", sizeof(zm_pod_name), {ZM_M(zm_pod_name, name)}},
      {"zm_port_key",
       sizeof(zm_port_key),
       {ZM_M(zm_port_key, pod_index), ZM_M(zm_port_key, port), ZM_M(zm_port_key, direction),
        ZM_M(zm_port_key, pad)}},
      {"zm_orig",
       sizeof(zm_orig),
       {ZM_M(zm_orig, ip), ZM_M(zm_orig, port), ZM_M(zm_orig, family), ZM_M(zm_orig, pad)}},
      {"zm_orig_key",
       sizeof(zm_orig_key),
       {ZM_M(zm_orig_key, netns_cookie), ZM_M(zm_orig_key, ip), ZM_M(zm_orig_key, port),
        ZM_M(zm_orig_key, pad)}},
      {"zm_tuple",
       sizeof(zm_tuple),
       {ZM_M(zm_tuple, saddr), ZM_M(zm_tuple, daddr), ZM_M(zm_tuple, sport), ZM_M(zm_tuple, dport),
        ZM_M(zm_tuple, pad)}},
      {"zm_bypass_val",
       sizeof(zm_bypass_val),
       {ZM_M(zm_bypass_val, time_ns), ZM_M(zm_bypass_val, reason), ZM_M(zm_bypass_val, pad)}},
      {"zm_listener_key",
       sizeof(zm_listener_key),
       {ZM_M(zm_listener_key, ip), ZM_M(zm_listener_key, role), ZM_M(zm_listener_key, pad)}},
  };
}

class BpfLayoutTest : public ::testing::TestWithParam<Layout> {
 protected:
  // The skeleton embeds the object: opening it parses its BTF without loading anything,
  // so this test needs no privileges.
  void SetUp() override {
    skel_ = zmesh_bpf__open();
    ASSERT_NE(skel_, nullptr) << "zmesh_bpf__open: errno " << errno;
    btf_ = bpf_object__btf(skel_->obj);
    ASSERT_NE(btf_, nullptr);
  }
  void TearDown() override { zmesh_bpf__destroy(skel_); }

  zmesh_bpf* skel_ = nullptr;
  const btf* btf_ = nullptr;
};

TEST_P(BpfLayoutTest, BtfMatchesCxx) {
  const Layout& want = GetParam();
  int id = btf__find_by_name_kind(btf_, want.name.c_str(), BTF_KIND_STRUCT);
  ASSERT_GT(id, 0) << want.name << " is not in the object's BTF (no map uses it?)";
  const btf_type* t = btf__type_by_id(btf_, id);
  EXPECT_EQ(t->size, want.size) << want.name;
  ASSERT_EQ(btf_vlen(t), want.members.size()) << want.name << ": member count";
  const btf_member* m = btf_members(t);
  for (size_t i = 0; i < want.members.size(); ++i) {
    EXPECT_EQ(btf__name_by_offset(btf_, m[i].name_off), want.members[i].name) << want.name;
    EXPECT_EQ(btf_member_bit_offset(t, i), want.members[i].offset * 8)
        << want.name << "." << want.members[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(AbiStructs, BpfLayoutTest, ::testing::ValuesIn(AbiLayouts()),
                         [](const auto& info) { return info.param.name; });

TEST(ReasonNameTest, EveryReasonHasItsWords) {
  std::vector<std::string> want = {
#define ZM_REASON_WORDS(name, words) words,
      ZM_REASONS(ZM_REASON_WORDS)
#undef ZM_REASON_WORDS
  };
  ASSERT_EQ(want.size(), static_cast<size_t>(ZM_R_MAX));
  for (uint32_t r = 0; r < ZM_R_MAX; ++r) {
    EXPECT_EQ(ReasonName(r), want[r]) << "reason " << r;
    EXPECT_NE(ReasonName(r), "unknown");
  }
  EXPECT_EQ(ReasonName(ZM_R_MAX), "unknown");
  EXPECT_EQ(ReasonName(ZM_R_OUT_REDIRECTED), "out-redirected");
  EXPECT_EQ(ReasonName(ZM_R_IN_DROP_NO_LISTENER), "in-drop-no-listener");
}

}  // namespace
}  // namespace zm::bpf

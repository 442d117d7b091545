#include "common/config/convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/config/snapshot_fixtures.h"

namespace zm::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace zm::config::testing;  // NOLINT

// Through the wire bytes, as the stream carries it.
v1::ConfigUpdate Wire(const v1::ConfigUpdate& u) {
  v1::ConfigUpdate out;
  EXPECT_TRUE(out.ParseFromString(u.SerializeAsString()));
  return out;
}

TEST(ConvertTest, FullSnapshotRoundTripsEveryField) {
  mesh::Snapshot s = FullSnapshot();
  v1::ConfigUpdate u = Wire(FullUpdate(s, 7));
  EXPECT_TRUE(u.full());
  EXPECT_EQ(u.version(), 7u);
  auto back = ApplyUpdate(nullptr, u);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(*back, s);
}

TEST(ConvertTest, WorkloadFieldsKeepIstioMeanings) {
  v1::Workload p = WorkloadToProto(MakeWorkload("demo", "a", "10.0.0.1"));
  EXPECT_EQ(p.uid(), "uid-a");
  EXPECT_EQ(p.namespace_(), "demo");
  EXPECT_EQ(p.service_account(), "sa-a");
  EXPECT_EQ(p.trust_domain(), "cluster.local");
  ASSERT_EQ(p.addresses_size(), 2);
  EXPECT_EQ(p.addresses(0), std::string("\x0a\x00\x00\x01", 4));  // IPv4: 4 bytes
  EXPECT_EQ(p.addresses(1).size(), 16u);                          // IPv6: 16 bytes
  auto back = WorkloadFromProto(p);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSame(*back, MakeWorkload("demo", "a", "10.0.0.1"));

  v1::Service sp = ServiceToProto(MakeService("demo", "web"));
  ASSERT_EQ(sp.ports_size(), 2);
  EXPECT_EQ(sp.ports(0).service_port(), 80u);
  EXPECT_EQ(sp.ports(0).target_port(), 8080u);
  EXPECT_EQ(sp.addresses(0), std::string("\x0a\x60\x00\x0a", 4));
}

TEST(ConvertTest, PeerAuthenticationModesKeepIstioNumbers) {
  v1::PeerAuthentication p = PeerAuthenticationToProto(MakePa("ns", "p", mesh::MtlsMode::kStrict));
  EXPECT_EQ(p.mode(), 3);                 // istio MutualTLS.Mode STRICT
  EXPECT_EQ(p.port_level().at(8080), 1);  // DISABLE
  EXPECT_EQ(p.port_level().at(9090), 0);  // UNSET
  EXPECT_TRUE(p.has_creation_time_ns());
  p.clear_creation_time_ns();
  auto back = PeerAuthenticationFromProto(p);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->creation_time_ns.has_value());  // absent stays absent, not 0
}

TEST(ConvertTest, UnknownModeNumbersFailClosed) {
  v1::PeerAuthentication p = PeerAuthenticationToProto(MakePa("ns", "p", std::nullopt));
  p.set_mode(static_cast<v1::PeerAuthentication::Mode>(42));
  (*p.mutable_port_level())[8080] = static_cast<v1::PeerAuthentication::Mode>(-5);
  // Through the wire: proto3 keeps unknown enum numbers.
  v1::PeerAuthentication wire;
  ASSERT_TRUE(wire.ParseFromString(p.SerializeAsString()));
  auto back = PeerAuthenticationFromProto(wire);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mode, mesh::MtlsMode::kStrict);
  EXPECT_EQ(back->port_level.at(8080), mesh::MtlsMode::kStrict);
  EXPECT_EQ(back->port_level.at(9090), std::nullopt);
}

TEST(ConvertTest, UnknownTunnelProtocolIsIgnored) {
  v1::Workload p = WorkloadToProto(MakeWorkload("demo", "a", "10.0.0.1"));
  p.set_tunnel_protocol(static_cast<v1::TunnelProtocol>(99));
  v1::Workload wire;
  ASSERT_TRUE(wire.ParseFromString(p.SerializeAsString()));
  EXPECT_TRUE(WorkloadFromProto(wire).ok());
}

TEST(ConvertTest, GarbageIsRefusedWithTheObjectNamed) {
  v1::Workload w = WorkloadToProto(MakeWorkload("demo", "a", "10.0.0.1"));
  w.add_addresses("abc");
  auto bad_addr = WorkloadFromProto(w);
  ASSERT_FALSE(bad_addr.ok());
  EXPECT_THAT(bad_addr.status().message(), HasSubstr("workload demo/a: address of 3 bytes"));

  w = WorkloadToProto(MakeWorkload("demo", "a", "10.0.0.1"));
  w.add_exclude_inbound_ports(70000);
  EXPECT_THAT(WorkloadFromProto(w).status().message(), HasSubstr("70000 is not a port"));

  w = WorkloadToProto(MakeWorkload("demo", "a", "10.0.0.1"));
  w.clear_name();
  EXPECT_FALSE(WorkloadFromProto(w).ok());

  v1::Service s = ServiceToProto(MakeService("demo", "web"));
  s.mutable_endpoints(0)->add_target_ports(1);  // 3 target ports for 2 service ports
  EXPECT_THAT(ServiceFromProto(s).status().message(), HasSubstr("3 target ports for 2"));
  s = ServiceToProto(MakeService("demo", "web"));
  s.mutable_ports(0)->set_service_port(0);
  EXPECT_FALSE(ServiceFromProto(s).ok());

  v1::ConfigUpdate u;
  EXPECT_FALSE(u.ParseFromString(std::string("\xff\xff\xff\xff garbage", 13)));

  v1::ConfigUpdate delta;
  delta.set_version(2);
  delta.set_base_version(1);
  EXPECT_EQ(ApplyUpdate(nullptr, delta).status().code(), absl::StatusCode::kFailedPrecondition);

  v1::ConfigUpdate full = FullUpdate(FullSnapshot(), 1);
  full.add_removed_workloads("demo/a");
  EXPECT_FALSE(ApplyUpdate(nullptr, full).ok());
}

TEST(ConvertTest, DeltaCarriesOnlyChangesAndApplies) {
  mesh::Snapshot before = FullSnapshot();
  mesh::Snapshot after = before;
  after.workloads[1].labels["version"] = "v2";                       // change demo/b
  after.workloads.push_back(MakeWorkload("demo", "c", "10.0.0.3"));  // add demo/c
  after.workloads.erase(after.workloads.begin());                    // remove demo/a
  after.services[0].vips = {Ip("10.96.0.11")};                       // change the service
  after.peer_authentications.pop_back();                             // remove demo/pa
  after.namespaces.push_back({.name = "third"});
  after.rejected_peer_authentications.pop_back();

  v1::ConfigUpdate d = Wire(DeltaUpdate(before, after, 4, 5));
  EXPECT_FALSE(d.full());
  EXPECT_EQ(d.base_version(), 4u);
  EXPECT_EQ(d.version(), 5u);
  ASSERT_EQ(d.workloads_size(), 2);
  EXPECT_EQ(d.workloads(0).name(), "b");
  EXPECT_EQ(d.workloads(1).name(), "c");
  EXPECT_THAT(d.removed_workloads(), ElementsAre("demo/a"));
  ASSERT_EQ(d.services_size(), 1);
  EXPECT_THAT(d.removed_services(), IsEmpty());
  EXPECT_EQ(d.peer_authentications_size(), 0);
  EXPECT_THAT(d.removed_peer_authentications(), ElementsAre("demo/pa"));
  ASSERT_EQ(d.namespaces_size(), 1);
  EXPECT_EQ(d.namespaces(0).name(), "third");
  EXPECT_TRUE(d.rejected_peer_authentications_set());
  EXPECT_EQ(d.rejected_peer_authentications_size(), 1);

  auto applied = ApplyUpdate(&before, d);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ExpectSame(*applied, after);

  // And back: removals of services and namespaces too.
  mesh::Snapshot empty;
  v1::ConfigUpdate to_empty = DeltaUpdate(after, empty, 5, 6);
  EXPECT_THAT(to_empty.removed_services(), ElementsAre("demo/web"));
  EXPECT_THAT(to_empty.removed_namespaces(), ElementsAre("demo", "other", "third"));
  auto emptied = ApplyUpdate(&after, to_empty);
  ASSERT_TRUE(emptied.ok());
  ExpectSame(*emptied, empty);
}

TEST(ConvertTest, AuthorizationPolicyDeltas) {
  mesh::Snapshot before = FullSnapshot();
  mesh::Snapshot after = before;
  after.authorization_policies[0].rules[0].from[0].namespaces.values = {"other"};  // changed
  after.authorization_policies.pop_back();                                         // removed
  after.rejected_authorization_policies.pop_back();
  v1::ConfigUpdate d = Wire(DeltaUpdate(before, after, 1, 2));
  ASSERT_EQ(d.authorization_policies_size(), 1);
  EXPECT_EQ(d.authorization_policies(0).name(), "allow-web");
  EXPECT_THAT(d.removed_authorization_policies(), ElementsAre("demo/wp-only"));
  EXPECT_TRUE(d.rejected_authorization_policies_set());
  EXPECT_EQ(d.default_policy(), v1::ZERO_TRUST);
  auto applied = ApplyUpdate(&before, d);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ExpectSame(*applied, after);
  EXPECT_TRUE(Empty(DeltaUpdate(after, after, 2, 3)));
}

TEST(ConvertTest, AnAuthorizationPolicyThisBuildCannotReadFailsClosed) {
  mesh::Snapshot s = FullSnapshot();
  v1::ConfigUpdate u = FullUpdate(s, 1);
  // A newer agent: an action number and a source field this build does not know.
  u.mutable_authorization_policies(0)->set_action(static_cast<v1::AuthorizationPolicy::Action>(9));
  (*u.mutable_authorization_policies(1)->mutable_rules(0)->add_from()->mutable_fields())["future"]
      .add_values("x");
  auto got = ApplyUpdate(nullptr, Wire(u));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(got->authorization_policies, IsEmpty());         // neither dropped nor half-read...
  ASSERT_EQ(got->rejected_authorization_policies.size(), 4u);  // ...but kept as rejected
  const auto* first = &got->rejected_authorization_policies[0];
  EXPECT_EQ(first->key(), "demo/allow-web");
  EXPECT_FALSE(first->action.has_value());  // unknown action: the strictest reading
  EXPECT_THAT(first->error, HasSubstr("unknown action number 9"));
  const auto* second = &got->rejected_authorization_policies[2];  // sorted by ns/name
  EXPECT_EQ(second->key(), "demo/wp-only");
  EXPECT_THAT(second->error, HasSubstr("unknown field \"future\""));
  EXPECT_TRUE(second->has_target_refs);

  // The agent then sends a readable version: it replaces the rejected entry.
  v1::ConfigUpdate fix;
  fix.set_version(2);
  fix.set_base_version(1);
  *fix.add_authorization_policies() = AuthorizationPolicyToProto(s.authorization_policies[0]);
  auto fixed = ApplyUpdate(&*got, Wire(fix));
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  ASSERT_EQ(fixed->authorization_policies.size(), 1u);
  EXPECT_EQ(fixed->rejected_authorization_policies.size(), 3u);
  // And a removal removes the unreadable one too.
  v1::ConfigUpdate removal;
  removal.add_removed_authorization_policies("demo/wp-only");
  auto removed = ApplyUpdate(&*fixed, Wire(removal));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->rejected_authorization_policies.size(), 2u);
}

TEST(ConvertTest, UnknownDefaultPolicyNumberIsZeroTrust) {
  v1::ConfigUpdate u;
  u.set_full(true);
  u.set_default_policy(static_cast<v1::DefaultPolicy>(7));
  auto got = ApplyUpdate(nullptr, Wire(u));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->default_policy, mesh::DefaultPolicy::kZeroTrust);
}

TEST(ConvertTest, NoChangeIsAnEmptyDelta) {
  mesh::Snapshot s = FullSnapshot();
  EXPECT_TRUE(Empty(DeltaUpdate(s, s, 1, 2)));
  mesh::Snapshot diagnostics_only = s;
  diagnostics_only.warnings.push_back("not carried");
  EXPECT_TRUE(Empty(DeltaUpdate(s, diagnostics_only, 1, 2)));
}

TEST(ConvertTest, AppliedSnapshotIsSortedLikeBuildSnapshot) {
  mesh::Snapshot s;
  // Namespace "a-b" sorts before "a" as a string key "a-b/x" < "a/x", but after it by (ns, name).
  s.workloads = {MakeWorkload("a", "x", "10.0.0.1"), MakeWorkload("a-b", "x", "10.0.0.2")};
  mesh::PeerAuthentication young = MakePa("demo", "a-young", mesh::MtlsMode::kStrict);
  young.creation_time_ns = 2;
  mesh::PeerAuthentication old = MakePa("demo", "z-old", mesh::MtlsMode::kStrict);
  old.creation_time_ns = 1;
  s.peer_authentications = {old, young};  // oldest first
  auto back = ApplyUpdate(nullptr, FullUpdate(s, 1));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->workloads[0].ns, "a");
  EXPECT_EQ(back->workloads[1].ns, "a-b");
  EXPECT_EQ(back->peer_authentications[0].name, "z-old");
  ASSERT_NE(back->FindWorkload("a-b", "x"), nullptr);
}

}  // namespace
}  // namespace zm::config

#pragma once
// Mesh snapshots with every field set, and a field-by-field comparison (the mesh structs have no
// operator==; comparing through the protos would test the conversion with itself).

#include <gtest/gtest.h>

#include <string>

#include "common/base/ip.h"
#include "common/mesh/workload.h"

namespace zm::config::testing {

inline IpAddr Ip(const char* text) { return IpAddr::Parse(text).value(); }

inline mesh::Workload MakeWorkload(const std::string& ns, const std::string& name, const char* ip) {
  return mesh::Workload{
      .uid = "uid-" + name,
      .name = name,
      .ns = ns,
      .service_account = "sa-" + name,
      .node = "node-1",
      .phase = "Running",
      .ips = {Ip(ip), Ip("fd00::7")},
      .labels = {{"app", name}, {"version", "v1"}},
      .annotations = {{"zmesh.io/netns", "/run/netns/" + name}},
      .netns = "/run/netns/" + name,
      .exclude_outbound_ports = {25, 3306},
      .exclude_inbound_ports = {9090},
      .ports = {{.name = "http", .port = 8080, .protocol = "TCP"},
                {.name = "", .port = 5353, .protocol = "UDP"}},
  };
}

inline mesh::Service MakeService(const std::string& ns, const std::string& name) {
  return mesh::Service{
      .name = name,
      .ns = ns,
      .type = "ClusterIP",
      .vips = {Ip("10.96.0.10"), Ip("fd00:96::10")},
      .ports = {{.name = "http",
                 .port = 80,
                 .target_port = 8080,
                 .protocol = "TCP",
                 .app_protocol = "http"},
                {.name = "grpc",
                 .port = 9000,
                 .target_port = 0,
                 .target_port_name = "grpc",
                 .protocol = "TCP"}},
      .selector = {{"app", name}},
      .endpoints = {{.workload_uid = "uid-a",
                     .workload = ns + "/a",
                     .ips = {Ip("10.0.0.1")},
                     .target_ports = {8080, 0}}},
      .source = "manifests/" + name + ".yaml",
  };
}

inline mesh::PeerAuthentication MakePa(const std::string& ns, const std::string& name,
                                       std::optional<mesh::MtlsMode> mode) {
  return mesh::PeerAuthentication{
      .name = name,
      .ns = ns,
      .selector = {{"app", "a"}},
      .mode = mode,
      .port_level = {{8080, mesh::MtlsMode::kDisable}, {9090, std::nullopt}},
      .creation_time_ns = 1'700'000'000'000'000'000,
      .source = "pa.yaml",
  };
}

// Everything the stream carries, every field set.
inline mesh::Snapshot FullSnapshot() {
  mesh::Snapshot s;
  s.namespaces = {{.name = "demo", .labels = {{"istio.io/dataplane-mode", "ambient"}}},
                  {.name = "other", .labels = {}}};
  s.workloads = {MakeWorkload("demo", "a", "10.0.0.1"), MakeWorkload("demo", "b", "10.0.0.2")};
  s.services = {MakeService("demo", "web")};
  mesh::PeerAuthentication wide = MakePa("demo", "wide", mesh::MtlsMode::kStrict);
  wide.selector.clear();
  wide.creation_time_ns.reset();  // no timestamp: the oldest
  s.peer_authentications = {wide, MakePa("demo", "pa", mesh::MtlsMode::kPermissive)};
  s.rejected_peer_authentications = {
      {.name = "bad",
       .ns = "demo",
       .selector = std::nullopt,
       .source = "bad.yaml",
       .error = "spec.mtls.mode: \"SOMETIMES\""},
      {.name = "",
       .ns = "other",
       .selector = std::map<std::string, std::string>{{"x", "y"}},
       .source = "bad2.yaml",
       .error = "no name"},
  };
  authz::AuthorizationPolicy ap{.name = "allow-web",
                                .ns = "demo",
                                .selector = std::map<std::string, std::string>{{"app", "web"}},
                                .action = authz::Action::kAllow,
                                .dry_run = true,
                                .source = "ap.yaml:doc1"};
  authz::Rule rule;
  rule.from.push_back(authz::Source{.principals = {{"cluster.local/ns/demo/sa/a"}, {"x"}},
                                    .namespaces = {{"demo"}, {}},
                                    .ip_blocks = {{}, {"10.0.0.0/8"}},
                                    .trust_domains = {{"cluster.local"}, {}}});
  rule.to.push_back(authz::Operation{.ports = {{"8080"}, {}}, .methods = {{"GET"}, {}}});
  rule.when.push_back(authz::Condition{.key = "request.headers[x-user]", .match = {{"a"}, {"b"}}});
  ap.rules = {rule, authz::Rule{}};
  authz::AuthorizationPolicy wp{
      .name = "wp-only",
      .ns = "demo",
      .target_refs = {{.group = "gateway.networking.k8s.io", .kind = "Gateway", .name = "wp"}},
      .action = authz::Action::kCustom,
      .provider = "ext",
      .rules = {authz::Rule{}}};
  s.authorization_policies = {ap, wp};
  s.rejected_authorization_policies = {
      {.name = "broken",
       .ns = "demo",
       .action = authz::Action::kDeny,
       .selector = std::map<std::string, std::string>{{"app", "a"}},
       .source = "broken.yaml:doc1",
       .error = "spec.rules[0].from: empty"},
      {.name = "unreadable",
       .ns = "other",
       .action = std::nullopt,
       .selector = std::nullopt,
       .selector_unreadable = true,
       .has_target_refs = true,
       .source = "u.yaml:doc1",
       .error = "spec.action: unknown action"},
  };
  s.default_policy = mesh::DefaultPolicy::kZeroTrust;
  return s;
}

inline void ExpectSame(const mesh::Workload& a, const mesh::Workload& b) {
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.ns, b.ns);
  EXPECT_EQ(a.service_account, b.service_account);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.phase, b.phase);
  EXPECT_EQ(a.ips, b.ips);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.annotations, b.annotations);
  EXPECT_EQ(a.netns, b.netns);
  EXPECT_EQ(a.exclude_outbound_ports, b.exclude_outbound_ports);
  EXPECT_EQ(a.exclude_inbound_ports, b.exclude_inbound_ports);
  EXPECT_EQ(a.ports, b.ports);
}

inline void ExpectSame(const mesh::Service& a, const mesh::Service& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.ns, b.ns);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.vips, b.vips);
  ASSERT_EQ(a.ports.size(), b.ports.size());
  for (size_t i = 0; i < a.ports.size(); ++i) {
    EXPECT_EQ(a.ports[i].name, b.ports[i].name);
    EXPECT_EQ(a.ports[i].port, b.ports[i].port);
    EXPECT_EQ(a.ports[i].target_port, b.ports[i].target_port);
    EXPECT_EQ(a.ports[i].target_port_name, b.ports[i].target_port_name);
    EXPECT_EQ(a.ports[i].protocol, b.ports[i].protocol);
    EXPECT_EQ(a.ports[i].app_protocol, b.ports[i].app_protocol);
  }
  EXPECT_EQ(a.selector, b.selector);
  ASSERT_EQ(a.endpoints.size(), b.endpoints.size());
  for (size_t i = 0; i < a.endpoints.size(); ++i) {
    EXPECT_EQ(a.endpoints[i].workload_uid, b.endpoints[i].workload_uid);
    EXPECT_EQ(a.endpoints[i].workload, b.endpoints[i].workload);
    EXPECT_EQ(a.endpoints[i].ips, b.endpoints[i].ips);
    EXPECT_EQ(a.endpoints[i].target_ports, b.endpoints[i].target_ports);
  }
  EXPECT_EQ(a.source, b.source);
}

inline void ExpectSame(const mesh::PeerAuthentication& a, const mesh::PeerAuthentication& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.ns, b.ns);
  EXPECT_EQ(a.selector, b.selector);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.port_level, b.port_level);
  EXPECT_EQ(a.creation_time_ns, b.creation_time_ns);
  EXPECT_EQ(a.source, b.source);
}

// The parts of a snapshot the stream carries (not rejected pods, errors, warnings).
inline void ExpectSame(const mesh::Snapshot& a, const mesh::Snapshot& b) {
  ASSERT_EQ(a.namespaces.size(), b.namespaces.size());
  for (size_t i = 0; i < a.namespaces.size(); ++i) {
    EXPECT_EQ(a.namespaces[i].name, b.namespaces[i].name);
    EXPECT_EQ(a.namespaces[i].labels, b.namespaces[i].labels);
  }
  ASSERT_EQ(a.workloads.size(), b.workloads.size());
  for (size_t i = 0; i < a.workloads.size(); ++i) ExpectSame(a.workloads[i], b.workloads[i]);
  ASSERT_EQ(a.services.size(), b.services.size());
  for (size_t i = 0; i < a.services.size(); ++i) ExpectSame(a.services[i], b.services[i]);
  ASSERT_EQ(a.peer_authentications.size(), b.peer_authentications.size());
  for (size_t i = 0; i < a.peer_authentications.size(); ++i) {
    ExpectSame(a.peer_authentications[i], b.peer_authentications[i]);
  }
  ASSERT_EQ(a.rejected_peer_authentications.size(), b.rejected_peer_authentications.size());
  for (size_t i = 0; i < a.rejected_peer_authentications.size(); ++i) {
    const auto& x = a.rejected_peer_authentications[i];
    const auto& y = b.rejected_peer_authentications[i];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.ns, y.ns);
    EXPECT_EQ(x.selector, y.selector);
    EXPECT_EQ(x.source, y.source);
    EXPECT_EQ(x.error, y.error);
  }
  // authz structs compare field by field (defaulted operator==); warnings are not carried.
  ASSERT_EQ(a.authorization_policies.size(), b.authorization_policies.size());
  for (size_t i = 0; i < a.authorization_policies.size(); ++i) {
    authz::AuthorizationPolicy x = a.authorization_policies[i], y = b.authorization_policies[i];
    x.warnings.clear();
    y.warnings.clear();
    EXPECT_TRUE(x == y) << x.key() << " vs " << y.key();
  }
  EXPECT_TRUE(a.rejected_authorization_policies == b.rejected_authorization_policies);
  EXPECT_EQ(a.default_policy, b.default_policy);
}

}  // namespace zm::config::testing

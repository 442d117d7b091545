// Policy evaluation cost per connection at the node tunnel (issue 4): mesh::AuthorizeL4 over a
// snapshot holding N AuthorizationPolicies. Run by scripts/bench-authz.sh, which prints the
// table; not a test (no timed assertions anywhere).
//
//   spread:  N policies over N/10 namespaces (selector and namespace-wide), as a cluster holds
//            them; 3 of them apply to the destination (a DENY and two ALLOWs, several rules).
//   all:     N selector policies in the destination's namespace, every one selecting it
//            (the worst case: each is evaluated).

#include <benchmark/benchmark.h>

#include <string>

#include "common/authz/engine.h"
#include "common/base/strings.h"
#include "common/mesh/authorization.h"
#include "common/mesh/workload.h"

namespace zm {
namespace {

authz::AuthorizationPolicy Allow(std::string ns, std::string name,
                                 std::optional<authz::StringMap> selector,
                                 std::vector<std::string> from_ns) {
  authz::AuthorizationPolicy p{.name = std::move(name), .ns = std::move(ns), .selector = selector};
  authz::Rule r;
  r.from.push_back(authz::Source{.namespaces = {std::move(from_ns), {}}});
  r.to.push_back(authz::Operation{.ports = {{"8080", "8443"}, {}}});
  p.rules = {r, r};
  p.rules[0].from[0].principals.values = {"cluster.local/ns/nobody/sa/none"};
  return p;
}

mesh::Snapshot Build(int n, bool all_apply) {
  mesh::Snapshot s;
  mesh::Workload w;
  w.uid = "u1";
  w.name = "server";
  w.ns = "demo";
  w.service_account = "web";
  w.labels = {{"app", "server"}, {"version", "v1"}};
  w.ips = {*IpAddr::Parse("198.18.1.11")};
  s.workloads = {w};
  if (all_apply) {
    for (int i = 0; i < n; ++i) {
      s.authorization_policies.push_back(Allow("demo", StrCat("p", i), authz::StringMap{{"app", "server"}},
                                               {StrCat("ns-", i)}));
    }
    // The one that admits the caller sorts last.
    s.authorization_policies.back().rules[1].from[0].namespaces.values = {"client-ns"};
    return s;
  }
  const int spread = std::max(1, n / 10);
  for (int i = 0; i + 3 < n; ++i) {
    std::string ns = StrCat("ns-", i % spread);
    authz::StringMap sel{{"app", StrCat("svc-", i)}};
    // In the destination's namespace only selector policies for other workloads; elsewhere a
    // mix of selector and namespace-wide ones.
    const bool in_demo = i % 7 == 0;
    s.authorization_policies.push_back(Allow(in_demo ? "demo" : ns, StrCat("p", i),
                                             !in_demo && i % 3 == 0 ? std::nullopt
                                                                    : std::optional(sel),
                                             {ns}));
  }
  if (n >= 1) s.authorization_policies.push_back(Allow("demo", "allow-server", authz::StringMap{{"app", "server"}}, {"client-ns"}));
  if (n >= 2) {
    auto deny = Allow("demo", "deny-bad", std::nullopt, {"bad-ns"});
    deny.action = authz::Action::kDeny;
    s.authorization_policies.push_back(deny);
  }
  if (n >= 3) s.authorization_policies.push_back(Allow("zmesh-system", "mesh-allow", std::nullopt, {"client-ns"}));
  return s;
}

void Evaluate(benchmark::State& state, bool all_apply) {
  const int n = static_cast<int>(state.range(0));
  mesh::Snapshot snap = Build(n, all_apply);
  auto set = mesh::BuildL4PolicySet(snap, "zmesh-system");
  const mesh::Workload& dst = snap.workloads[0];
  mesh::L4Request req{.principal = std::string("cluster.local/ns/client-ns/sa/client"),
                      .source_ip = *IpAddr::Parse("198.18.1.10"),
                      .destination_ip = dst.ips[0],
                      .port = 8080,
                      .tunneled = true};
  size_t applicable = set->ForWorkload(dst.ns, dst.labels).size();
  bool allowed = false;
  for (auto _ : state) {
    mesh::L4Verdict v = mesh::AuthorizeL4(snap, *set, dst, req, "zmesh-system");
    allowed = v.allowed;
    benchmark::DoNotOptimize(v);
  }
  state.counters["applicable"] = static_cast<double>(applicable);
  state.counters["allowed"] = allowed ? 1 : 0;
  state.SetLabel(all_apply ? "all apply" : "spread");
}

void BM_AuthorizeL4_Spread(benchmark::State& state) { Evaluate(state, false); }
void BM_AuthorizeL4_AllApply(benchmark::State& state) { Evaluate(state, true); }
BENCHMARK(BM_AuthorizeL4_Spread)->Arg(1)->Arg(100)->Arg(10000);
BENCHMARK(BM_AuthorizeL4_AllApply)->Arg(1)->Arg(100)->Arg(10000);

// Compiling a snapshot's policies (once per config update, on the config thread).
void BM_BuildPolicySet(benchmark::State& state) {
  mesh::Snapshot snap = Build(static_cast<int>(state.range(0)), false);
  for (auto _ : state) benchmark::DoNotOptimize(mesh::BuildL4PolicySet(snap, "zmesh-system"));
}
BENCHMARK(BM_BuildPolicySet)->Arg(1)->Arg(100)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zm

BENCHMARK_MAIN();

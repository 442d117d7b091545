#include "common/mesh/peer_authentication.h"

#include "common/base/strings.h"
#include "common/mesh/workload.h"

namespace zm::mesh {
namespace {

std::string ModeText(const std::optional<MtlsMode>& mode) {
  return mode ? std::string(MtlsModeName(*mode)) : std::string("UNSET");
}

// Adds a trace line when explaining; the text is only built then (the data path asks without).
template <typename F>
void Note(std::vector<std::string>* trace, F&& text) {
  if (trace != nullptr) trace->push_back(text());
}

// Keeps in `*current` the oldest of it and `candidate` at one level, tracing the loser.
void PickOldest(const PeerAuthentication* candidate, const PeerAuthentication** current,
                std::string_view level, std::vector<std::string>* trace) {
  if (*current == nullptr) {
    *current = candidate;
    return;
  }
  const PeerAuthentication* loser = candidate;
  if (OlderPeerAuthentication(*candidate, **current)) {
    loser = *current;
    *current = candidate;
  }
  Note(trace, [&] {
    return StrCat(loser->key(), ": ignored, ", (*current)->key(), " is an older ", level,
                  " PeerAuthentication (only the oldest counts)");
  });
}

}  // namespace

std::string_view MtlsModeName(MtlsMode mode) {
  switch (mode) {
    case MtlsMode::kStrict:
      return "STRICT";
    case MtlsMode::kPermissive:
      return "PERMISSIVE";
    case MtlsMode::kDisable:
      return "DISABLE";
  }
  return "STRICT";
}

std::string_view MtlsLevelName(MtlsLevel level) {
  switch (level) {
    case MtlsLevel::kDefault:
      return "default";
    case MtlsLevel::kMesh:
      return "mesh";
    case MtlsLevel::kNamespace:
      return "namespace";
    case MtlsLevel::kWorkload:
      return "workload";
    case MtlsLevel::kPort:
      return "port";
    case MtlsLevel::kRejected:
      return "rejected";
  }
  return "default";
}

bool OlderPeerAuthentication(const PeerAuthentication& a, const PeerAuthentication& b) {
  // No timestamp = Go's zero time in Istio: older than every real one.
  int64_t ta = a.creation_time_ns.value_or(INT64_MIN);
  int64_t tb = b.creation_time_ns.value_or(INT64_MIN);
  if (ta != tb) return ta < tb;
  if (a.name != b.name) return a.name < b.name;
  return a.ns < b.ns;
}

namespace {

// The resolution of §3.2 (see the header); `trace` is null on the data path.
MtlsDecision Resolve(const Snapshot& snapshot, const Workload& workload, uint16_t port,
                     std::string_view root_namespace, DefaultPolicy default_policy,
                     std::vector<std::string>* trace) {
  MtlsDecision d;
  if (default_policy == DefaultPolicy::kZeroTrust) {
    d.mode = MtlsMode::kStrict;
    Note(trace, [&] { return std::string("default: STRICT (--default-policy=zero-trust)"); });
  } else {
    d.mode = MtlsMode::kPermissive;
    Note(trace, [&] { return std::string("default: PERMISSIVE (upstream default)"); });
  }

  // A rejected policy covering the workload decides alone: fail closed (§9.8).
  for (const RejectedPeerAuthentication& r : snapshot.rejected_peer_authentications) {
    bool covers = false;
    if (r.ns == root_namespace) {
      // Mesh-wide, or possibly so (unreadable selector). A readable selector in the root
      // namespace would be ignored if the policy were valid.
      covers = !r.selector.has_value() || r.selector->empty();
    } else if (r.ns == workload.ns) {
      covers = !r.selector.has_value() || SelectorMatches(*r.selector, workload.labels);
    }
    if (!covers) continue;
    d.mode = MtlsMode::kStrict;
    d.level = MtlsLevel::kRejected;
    d.policy = r.key();
    Note(trace, [&] {
      return StrCat(r.key(), ": rejected (", r.error, "); its scope covers ", workload.key(),
                    ", so every port is STRICT (fail closed)");
    });
    return d;
  }

  const PeerAuthentication* mesh = nullptr;
  const PeerAuthentication* ns = nullptr;
  const PeerAuthentication* wl = nullptr;
  for (const PeerAuthentication& pa : snapshot.peer_authentications) {
    if (pa.ns == root_namespace) {
      if (pa.selector.empty()) {
        PickOldest(&pa, &mesh, "mesh-wide", trace);
      } else if (SelectorMatches(pa.selector, workload.labels)) {
        Note(trace, [&] {
          return StrCat(pa.key(),
                        ": ignored, a PeerAuthentication with a selector in "
                        "the root namespace never applies");
        });
      }
    } else if (pa.ns == workload.ns) {
      if (pa.selector.empty()) {
        PickOldest(&pa, &ns, "namespace-wide", trace);
      } else if (SelectorMatches(pa.selector, workload.labels)) {
        PickOldest(&pa, &wl, "workload", trace);
      }
    }
  }

  auto apply = [&d, trace](const PeerAuthentication* pa, MtlsLevel level) {
    if (pa == nullptr) return;
    if (!pa->mode) {
      Note(trace, [&] {
        return StrCat(MtlsLevelName(level), " ", pa->key(), ": UNSET, inherits ",
                      MtlsModeName(d.mode));
      });
      return;
    }
    d.mode = *pa->mode;
    d.level = level;
    d.policy = pa->key();
    Note(trace,
         [&] { return StrCat(MtlsLevelName(level), " ", pa->key(), ": ", MtlsModeName(d.mode)); });
  };
  apply(mesh, MtlsLevel::kMesh);
  apply(ns, MtlsLevel::kNamespace);
  apply(wl, MtlsLevel::kWorkload);
  if (wl != nullptr) {
    auto it = wl->port_level.find(port);
    if (it != wl->port_level.end()) {
      if (it->second) {
        d.mode = *it->second;
        d.level = MtlsLevel::kPort;
        d.policy = wl->key();
        Note(trace,
             [&] { return StrCat("port ", port, " of ", wl->key(), ": ", ModeText(it->second)); });
      } else {
        Note(trace, [&] {
          return StrCat("port ", port, " of ", wl->key(), ": UNSET, inherits ",
                        MtlsModeName(d.mode));
        });
      }
    }
  }
  return d;
}

}  // namespace

MtlsDecision ExplainMtlsMode(const Snapshot& snapshot, const Workload& workload, uint16_t port,
                             std::string_view root_namespace, DefaultPolicy default_policy) {
  std::vector<std::string> trace;
  MtlsDecision d = Resolve(snapshot, workload, port, root_namespace, default_policy, &trace);
  d.trace = std::move(trace);
  return d;
}

MtlsMode EffectiveMtlsMode(const Snapshot& snapshot, const Workload& workload, uint16_t port,
                           std::string_view root_namespace, DefaultPolicy default_policy) {
  return Resolve(snapshot, workload, port, root_namespace, default_policy, nullptr).mode;
}

}  // namespace zm::mesh

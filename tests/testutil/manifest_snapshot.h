#pragma once
// One parsed manifest file as the ManifestSnapshot a ManifestStore would hold (tests that
// build a mesh::Snapshot from YAML text).

#include "common/k8s/manifest.h"
#include "common/k8s/manifest_store.h"

namespace zm::testutil {

inline k8s::ManifestSnapshot ManifestSnapshotOf(const k8s::ParsedFile& f) {
  k8s::ManifestSnapshot s;
  s.namespaces = f.namespaces;
  s.pods = f.pods;
  s.services = f.services;
  s.peer_authentications = f.peer_authentications;
  s.rejected_peer_authentications = f.rejected_peer_authentications;
  s.authorization_policies = f.authorization_policies;
  s.rejected_authorization_policies = f.rejected_authorization_policies;
  s.request_authentications = f.request_authentications;
  s.rejected_request_authentications = f.rejected_request_authentications;
  s.errors = f.errors;
  return s;
}

}  // namespace zm::testutil

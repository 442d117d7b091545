#pragma once
// Which identities a node's ztunnel may obtain (DESIGN §5): those of the pods scheduled on
// that node. Today from a manifest directory (ManifestNodeAuthorizer); the Kubernetes issue
// backs the same interface with the API server's pods.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/k8s/manifest_store.h"
#include "common/tls/spiffe.h"

namespace zm::ca {

class NodeAuthorizer {
 public:
  virtual ~NodeAuthorizer() = default;
  // OK when the ztunnel of `node` may obtain `identity`; PermissionDenied saying why not;
  // Unavailable when the source of truth cannot be read (fail closed).
  virtual absl::Status Authorize(std::string_view node, const tls::SpiffeId& identity) = 0;
};

// Allows spiffe://<trust domain>/ns/<ns>/sa/<sa> to `node` when a pod of namespace ns, service
// account sa (empty reads as "default"), spec.nodeName == node and a phase that is not
// Succeeded or Failed is in the manifest directory. Pods that fail translation give nothing.
// The directory is re-read on every call (k8s::ManifestStore; unchanged files are not
// re-parsed), so a pod added or moved counts from the next request on. Thread-safe.
class ManifestNodeAuthorizer final : public NodeAuthorizer {
 public:
  // Fails, naming the directory, when it cannot be listed.
  static absl::StatusOr<std::unique_ptr<ManifestNodeAuthorizer>> Open(std::string dir,
                                                                      std::string trust_domain);

  absl::Status Authorize(std::string_view node, const tls::SpiffeId& identity) override;

 private:
  ManifestNodeAuthorizer(std::string dir, std::string trust_domain)
      : trust_domain_(std::move(trust_domain)), store_(std::move(dir)) {}

  const std::string trust_domain_;
  std::mutex mu_;
  k8s::ManifestStore store_;  // guarded by mu_
};

}  // namespace zm::ca

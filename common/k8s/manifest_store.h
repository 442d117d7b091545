#pragma once
// The objects of a manifest directory (local mode, DESIGN §2): every *.yaml, *.yml and
// *.json file directly in it (not recursive; dot files skipped), read in sorted name order
// and merged into one snapshot.
//
// On Reload(): a file that cannot be read or is not YAML at all keeps its last good
// content (and reports the error); a removed file drops its objects. An object defined
// twice (same kind, namespace and name) is taken from the first file in sorted order, and
// the error names both places. A PeerAuthentication that failed validation is kept as rejected
// (its scope fails closed in the mesh model). Not thread-safe: one owner (the manifest watcher's
// thread).

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/k8s/manifest.h"

namespace zm::k8s {

// What the directory says right now. Immutable once built; shared as
// std::shared_ptr<const ManifestSnapshot>.
struct ManifestSnapshot {
  std::vector<Namespace> namespaces;                     // sorted by name
  std::vector<Pod> pods;                                 // sorted by namespace/name
  std::vector<Service> services;                         // sorted by namespace/name
  std::vector<PeerAuthentication> peer_authentications;  // sorted by namespace/name
  // Sorted by namespace/name. A PeerAuthentication and a rejected one share one name space for
  // duplicates (the first in sorted file order is kept, whichever it is).
  std::vector<RejectedPeerAuthentication> rejected_peer_authentications;
  // The same for AuthorizationPolicy (sorted by namespace/name, one name space for duplicates).
  std::vector<authz::AuthorizationPolicy> authorization_policies;
  std::vector<authz::RejectedAuthorizationPolicy> rejected_authorization_policies;
  std::vector<jwt::RequestAuthentication> request_authentications;
  std::vector<jwt::RejectedRequestAuthentication> rejected_request_authentications;
  std::vector<std::string> errors;  // in file order; empty when everything parsed

  const Namespace* FindNamespace(std::string_view name) const;
  const Pod* FindPod(std::string_view namespace_name, std::string_view name) const;
  const Service* FindService(std::string_view namespace_name, std::string_view name) const;
  const PeerAuthentication* FindPeerAuthentication(std::string_view namespace_name,
                                                   std::string_view name) const;
};

class ManifestStore {
 public:
  explicit ManifestStore(std::string dir);

  // Rescans the directory. An error only when the directory itself cannot be listed (the
  // previous content is then kept untouched); file problems end up in Snapshot().errors.
  absl::Status Reload();

  ManifestSnapshot Snapshot() const;
  const std::string& dir() const { return dir_; }

  // The objects of several paths read once, in the order given (zmeshctl's --manifests): a
  // directory contributes its manifest files as Reload reads them, a file itself; duplicates
  // are resolved as above (the first wins). A path that cannot be read, or a file that is not
  // YAML at all, is an error naming it; problems with single objects are in errors.
  static absl::StatusOr<ManifestSnapshot> Load(const std::vector<std::string>& paths);

 private:
  struct FileState {
    std::string content;  // of the last read, to skip re-parsing unchanged files
    ParsedFile last_good;
    std::string error;  // the file as a whole failed on the last read (last_good kept)
  };
  std::string dir_;
  std::map<std::string, FileState> files_;  // by file name, sorted
};

// True for the file names a manifest directory reads.
bool IsManifestFileName(std::string_view name);

}  // namespace zm::k8s

#pragma once
// Kubernetes objects read from ordinary YAML manifests (local mode, DESIGN §2), as plain
// structs. Only the fields the mesh needs are kept; the same structs are filled by the
// cluster-mode watcher later, so everything downstream (common/mesh) sees one shape.
//
// Parsing is per object: one bad object is an error naming the file, the document, the
// object and the field, and the good objects of the same file are kept. Only a file that
// cannot be read or is not YAML at all fails as a whole.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace zm::k8s {

using StringMap = std::map<std::string, std::string>;

struct Namespace {
  std::string name;
  StringMap labels;
  StringMap annotations;
  std::string source;  // "ns.yaml:doc1" (list items: "ns.yaml:doc1/items[0]")
};

struct Pod {
  std::string uid;  // metadata.uid, or derived from namespace/name (DerivedUid)
  std::string name;
  std::string namespace_name;  // metadata.namespace, "default" when absent
  StringMap labels;
  StringMap annotations;
  std::string service_account = "default";  // spec.serviceAccountName
  std::string node_name;                     // spec.nodeName, empty when unscheduled
  std::string phase;  // status.phase: "", Pending, Running, Succeeded, Failed, Unknown
  std::vector<std::string> pod_ips;  // status.podIP then status.podIPs[].ip, validated, deduplicated
  std::string source;

  // "demo/client"
  std::string key() const { return namespace_name + "/" + name; }
};

// What one file holds. `errors` are per object and read like
// `pods.yaml: document 2 (Pod demo/client): status.podIP: not an IP address: "10.1"`.
struct ParsedFile {
  std::vector<Namespace> namespaces;
  std::vector<Pod> pods;
  std::vector<std::string> errors;
};

// Parses YAML text (one or more documents; `kind: List` is unrolled). `file_name` is used
// in sources and errors as given. Not YAML at all: InvalidArgument naming the file, the line
// and the column ("pods.yaml: line 3, column 5: YAML error: ..."). Kinds other than
// v1 Namespace and v1 Pod are skipped.
absl::StatusOr<ParsedFile> ParseManifest(std::string_view content, std::string_view file_name);

// Largest manifest file read (a guard against pointing the agent at the wrong file).
inline constexpr size_t kMaxManifestBytes = 16 * 1024 * 1024;

// The bytes of one file (open/read errors name the path).
absl::StatusOr<std::string> ReadManifestBytes(const std::string& path);

// Reads and parses one file; sources and errors name `path` as given.
absl::StatusOr<ParsedFile> ParseManifestFile(const std::string& path);

// The uid of a pod whose manifest has none: local manifests are usually written by hand and
// omit metadata.uid, so one is derived from namespace/name. It is stable across reloads and
// agent restarts (a pod recreated under the same name keeps it, which local mode accepts).
std::string DerivedUid(std::string_view namespace_name, std::string_view name);

}  // namespace zm::k8s

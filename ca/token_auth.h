#pragma once
// Who is calling zmesh-ca (cluster mode). The caller sends gRPC metadata
// `authorization: Bearer <token>`; a TokenAuthenticator says which node's ztunnel the token
// belongs to. Today that is a static token file (StaticTokenFile, in the spirit of
// kube-apiserver's --token-auth-file); the Kubernetes issue swaps in TokenReview (a projected
// service-account token bound to a pod, whose node is the caller's node) behind the same
// interface.

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/ca/ca_service.h"

namespace zm::ca {

class TokenAuthenticator {
 public:
  virtual ~TokenAuthenticator() = default;
  // The caller `token` identifies, with Caller::node set. Unauthenticated for a token it does
  // not know; Unavailable when it cannot decide at all (its source is broken): fail closed.
  virtual absl::StatusOr<Caller> Authenticate(std::string_view token) = 0;
};

// The bearer token in an RPC's metadata. Unauthenticated, naming the reason, when there is
// no `authorization` entry, more than one, a scheme other than Bearer, or an empty token.
absl::StatusOr<std::string> BearerToken(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// The SHA-256 of `token`, in hex: how the authenticators keep and look up tokens (never the
// tokens themselves, which are also never logged).
std::string TokenDigest(std::string_view token);

// One line of a token file, keyed (in ParseTokenFile's map) by the SHA-256 of the token, so
// the tokens themselves are not kept and a lookup does not compare secrets byte by byte.
struct TokenEntry {
  std::string node;
  int line = 0;
};

// Lines `TOKEN,NODE`: surrounding blanks ignored; blank lines and lines starting with `#`
// skipped. A token is printable ASCII without blanks or commas; a node is a DNS subdomain
// (what spec.nodeName holds). Any other line — a missing or extra field, an empty token, a bad
// node name, a token given twice — fails the whole file with an error naming the file and the
// line: "token file /etc/zmesh/tokens, line 3: expected TOKEN,NODE, found 3 fields".
absl::StatusOr<std::map<std::string, TokenEntry>> ParseTokenFile(std::string_view content,
                                                                 std::string_view path);

// The token file, re-read when it changes: every call stat()s it and re-parses it when its
// inode, size, mtime or ctime moved (so an atomic rename or a Secret's symlink swap is seen at
// once, and an unchanged file is not re-read). A file that is missing or malformed after a
// change refuses every caller (Unavailable, naming the file and line) until it is fixed: a
// broken edit never leaves a revoked token valid. Thread-safe.
class StaticTokenFile final : public TokenAuthenticator {
 public:
  // Reads and parses the file now; its errors are returned.
  static absl::StatusOr<std::unique_ptr<StaticTokenFile>> Load(std::string path);

  absl::StatusOr<Caller> Authenticate(std::string_view token) override;

  // How many tokens the file held at its last good read.
  size_t size() const;

 private:
  struct Stamp {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    timespec ctime{};
    bool operator==(const Stamp& o) const;
  };
  explicit StaticTokenFile(std::string path) : path_(std::move(path)) {}
  // Re-reads the file when its stamp moved; the result is load_status_. mu_ held.
  void RefreshLocked();

  const std::string path_;
  mutable std::mutex mu_;
  bool loaded_ = false;                       // guarded by mu_
  Stamp stamp_;                               // guarded by mu_
  absl::Status load_status_;                  // guarded by mu_
  std::map<std::string, TokenEntry> tokens_;  // by SHA-256 (hex) of the token; guarded by mu_
};

}  // namespace zm::ca

#pragma once
// Conversion between the mesh model (common/mesh) and the config stream's protos
// (proto/zmesh/config/v1). The generated types stop here (CONVENTIONS 12): the server and the
// client below hand out mesh::Snapshot, never protos.
//
// Not carried: Snapshot::rejected (pods that failed translation), errors and warnings — agent
// diagnostics the ztunnel does not act on. A received snapshot has them empty.
//
// Decoding is strict where a wrong value could misattribute identity (an address that is not 4
// or 16 bytes, a port above 65535: the update is refused) and fails closed where a value is
// merely unknown (an mTLS mode number this build does not know reads as STRICT).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/mesh/workload.h"
#include "zmesh/config/v1/config.pb.h"

namespace zm::config {

namespace v1 = ::zmesh::config::v1;

v1::Workload WorkloadToProto(const mesh::Workload& w);
absl::StatusOr<mesh::Workload> WorkloadFromProto(const v1::Workload& p);

v1::Service ServiceToProto(const mesh::Service& s);
absl::StatusOr<mesh::Service> ServiceFromProto(const v1::Service& p);

v1::Namespace NamespaceToProto(const mesh::Namespace& n);
mesh::Namespace NamespaceFromProto(const v1::Namespace& p);

v1::PeerAuthentication PeerAuthenticationToProto(const mesh::PeerAuthentication& pa);
absl::StatusOr<mesh::PeerAuthentication> PeerAuthenticationFromProto(
    const v1::PeerAuthentication& p);

v1::RejectedPeerAuthentication RejectedPeerAuthenticationToProto(
    const mesh::RejectedPeerAuthentication& r);
mesh::RejectedPeerAuthentication RejectedPeerAuthenticationFromProto(
    const v1::RejectedPeerAuthentication& p);

v1::AuthorizationPolicy AuthorizationPolicyToProto(const authz::AuthorizationPolicy& p);
// Errors (an unknown field name or action number from a newer agent) name the policy; the
// caller keeps such a policy as rejected (it fails closed).
absl::StatusOr<authz::AuthorizationPolicy> AuthorizationPolicyFromProto(
    const v1::AuthorizationPolicy& p);

v1::RejectedAuthorizationPolicy RejectedAuthorizationPolicyToProto(
    const authz::RejectedAuthorizationPolicy& r);
authz::RejectedAuthorizationPolicy RejectedAuthorizationPolicyFromProto(
    const v1::RejectedAuthorizationPolicy& p);

// A full update carrying every object of `snapshot`.
v1::ConfigUpdate FullUpdate(const mesh::Snapshot& snapshot, uint64_t version);

// The delta turning `before` into `after` (upserts of added/changed objects, removals by key),
// with base_version and version set. Empty() tells whether anything changed.
v1::ConfigUpdate DeltaUpdate(const mesh::Snapshot& before, const mesh::Snapshot& after,
                             uint64_t base_version, uint64_t version);

// Whether a delta carries no change.
bool Empty(const v1::ConfigUpdate& delta);

// Applies an update: a full one replaces `base` (which may be null), a delta applies on top of
// it. Does not check versions (the client does). Errors name the object and field; `base` is
// never modified. The result is sorted as BuildSnapshot sorts.
absl::StatusOr<mesh::Snapshot> ApplyUpdate(const mesh::Snapshot* base,
                                           const v1::ConfigUpdate& update);

}  // namespace zm::config

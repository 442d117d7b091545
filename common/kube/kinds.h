#pragma once
// The kinds the mesh watches (DESIGN §2), their converters and their informers.
//
// Namespace, Pod, Service and the three Istio security kinds (PeerAuthentication,
// AuthorizationPolicy, RequestAuthentication) become the same structs local mode reads from YAML,
// through the same parser (k8s::ParseObject: the API server's JSON is YAML), so there is one
// translation for both modes. EndpointSlice stays a JSON object: local mode reads none (the mesh
// model takes a Service's endpoints from the pods its selector matches).

#include <memory>
#include <nlohmann/json.hpp>
#include <variant>

#include "absl/status/statusor.h"
#include "common/jwt/policy.h"
#include "common/k8s/manifest.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"

namespace zm::kube {

inline constexpr ResourceKind kNamespaceKind{"v1", "Namespace", "namespaces", false};
inline constexpr ResourceKind kPodKind{"v1", "Pod", "pods", true};
inline constexpr ResourceKind kServiceKind{"v1", "Service", "services", true};
inline constexpr ResourceKind kEndpointSliceKind{"discovery.k8s.io/v1", "EndpointSlice",
                                                 "endpointslices", true};
inline constexpr ResourceKind kAuthorizationPolicyKind{
    "security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies", true};
inline constexpr ResourceKind kPeerAuthenticationKind{"security.istio.io/v1", "PeerAuthentication",
                                                      "peerauthentications", true};
inline constexpr ResourceKind kRequestAuthenticationKind{
    "security.istio.io/v1", "RequestAuthentication", "requestauthentications", true};

// The `source` of every struct converted from the API, and the start of its errors:
// "kube-apiserver (Pod demo/client): status.podIP: not an IP address: \"10.1\"".
inline constexpr char kApiServerSource[] = "kube-apiserver";

// A PeerAuthentication that failed validation is kept, rejected, so that its scope fails
// closed (policy-semantics §9.8), exactly as in local mode.
using PeerAuthenticationObject =
    std::variant<k8s::PeerAuthentication, k8s::RejectedPeerAuthentication>;
// The same for AuthorizationPolicy: a rejected one fails closed on its scope (authz/policy.h).
using AuthorizationPolicyObject =
    std::variant<authz::AuthorizationPolicy, authz::RejectedAuthorizationPolicy>;
// And for RequestAuthentication: a rejected one fails tokens at its scope (jwt/policy.h).
using RequestAuthenticationObject =
    std::variant<jwt::RequestAuthentication, jwt::RejectedRequestAuthentication>;

// Converters. The object needs kind and apiVersion (the informer fills them in for list items);
// an object of another kind, or one that fails validation, is InvalidArgument with every error.
absl::StatusOr<k8s::Namespace> NamespaceFromJson(const nlohmann::json& object);
absl::StatusOr<k8s::Pod> PodFromJson(const nlohmann::json& object);
absl::StatusOr<k8s::Service> ServiceFromJson(const nlohmann::json& object);
absl::StatusOr<PeerAuthenticationObject> PeerAuthenticationFromJson(const nlohmann::json& object);
absl::StatusOr<AuthorizationPolicyObject> AuthorizationPolicyFromJson(const nlohmann::json& object);
absl::StatusOr<RequestAuthenticationObject> RequestAuthenticationFromJson(
    const nlohmann::json& object);
// The object as it is (EndpointSlice).
absl::StatusOr<nlohmann::json> RawObject(const nlohmann::json& object);

using NamespaceInformer = Informer<k8s::Namespace>;
using PodInformer = Informer<k8s::Pod>;
using ServiceInformer = Informer<k8s::Service>;
using PeerAuthenticationInformer = Informer<PeerAuthenticationObject>;
using AuthorizationPolicyInformer = Informer<AuthorizationPolicyObject>;
using RequestAuthenticationInformer = Informer<RequestAuthenticationObject>;
using RawInformer = Informer<nlohmann::json>;

std::unique_ptr<NamespaceInformer> NewNamespaceInformer(KubeApi& api, InformerOptions options = {});
std::unique_ptr<PodInformer> NewPodInformer(KubeApi& api, InformerOptions options = {});
std::unique_ptr<ServiceInformer> NewServiceInformer(KubeApi& api, InformerOptions options = {});
std::unique_ptr<PeerAuthenticationInformer> NewPeerAuthenticationInformer(
    KubeApi& api, InformerOptions options = {});
std::unique_ptr<RawInformer> NewEndpointSliceInformer(KubeApi& api, InformerOptions options = {});
std::unique_ptr<AuthorizationPolicyInformer> NewAuthorizationPolicyInformer(
    KubeApi& api, InformerOptions options = {});
std::unique_ptr<RequestAuthenticationInformer> NewRequestAuthenticationInformer(
    KubeApi& api, InformerOptions options = {});

}  // namespace zm::kube

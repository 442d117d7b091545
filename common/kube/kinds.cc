#include "common/kube/kinds.h"

#include <string>
#include <vector>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/kube/json.h"

namespace zm::kube {
namespace {

using nlohmann::json;

// The object through the manifest parser; its errors joined.
absl::StatusOr<k8s::ParsedFile> Parse(const json& object) {
  ZM_ASSIGN_OR_RETURN(k8s::ParsedFile parsed, k8s::ParseObject(Dump(object), kApiServerSource));
  return parsed;
}

absl::Status Refused(const k8s::ParsedFile& parsed, const json& object, std::string_view want) {
  if (!parsed.errors.empty()) {
    std::string all;
    for (const std::string& e : parsed.errors) all += StrCat(all.empty() ? "" : "; ", e);
    return absl::InvalidArgumentError(all);
  }
  return absl::InvalidArgumentError(StrCat(kApiServerSource, ": not a ", want, " (apiVersion \"",
                                           StringField(object, "apiVersion"), "\", kind \"",
                                           StringField(object, "kind"), "\")"));
}

// The one object of kind `want` that `parsed` holds, from its list `(parsed.*member)`.
template <typename T>
absl::StatusOr<T> Single(absl::StatusOr<k8s::ParsedFile> parsed,
                         std::vector<T> k8s::ParsedFile::*member, const json& object,
                         std::string_view want) {
  if (!parsed.ok()) return parsed.status();
  std::vector<T>& list = (*parsed).*member;
  if (list.size() != 1 || !parsed->errors.empty()) return Refused(*parsed, object, want);
  return std::move(list.front());
}

// The one policy `object` holds, valid or rejected: a policy that fails validation is kept, so
// that its scope fails closed, exactly as in local mode.
template <typename Variant, typename Valid, typename Rejected>
absl::StatusOr<Variant> ValidOrRejected(const json& object,
                                        std::vector<Valid> k8s::ParsedFile::*valid,
                                        std::vector<Rejected> k8s::ParsedFile::*rejected,
                                        std::string_view want) {
  ZM_ASSIGN_OR_RETURN(k8s::ParsedFile parsed, Parse(object));
  if ((parsed.*valid).size() == 1) return Variant(std::move((parsed.*valid).front()));
  if ((parsed.*rejected).size() == 1) return Variant(std::move((parsed.*rejected).front()));
  return Refused(parsed, object, want);
}

template <typename T>
std::unique_ptr<Informer<T>> New(KubeApi& api, const ResourceKind& kind,
                                 typename Informer<T>::Converter convert, InformerOptions options) {
  return std::make_unique<Informer<T>>(api, kind, std::move(convert), std::move(options));
}

}  // namespace

absl::StatusOr<k8s::Namespace> NamespaceFromJson(const json& object) {
  return Single(Parse(object), &k8s::ParsedFile::namespaces, object, "v1 Namespace");
}

absl::StatusOr<k8s::Pod> PodFromJson(const json& object) {
  return Single(Parse(object), &k8s::ParsedFile::pods, object, "v1 Pod");
}

absl::StatusOr<k8s::Service> ServiceFromJson(const json& object) {
  return Single(Parse(object), &k8s::ParsedFile::services, object, "v1 Service");
}

absl::StatusOr<PeerAuthenticationObject> PeerAuthenticationFromJson(const json& object) {
  return ValidOrRejected<PeerAuthenticationObject>(object, &k8s::ParsedFile::peer_authentications,
                                                   &k8s::ParsedFile::rejected_peer_authentications,
                                                   "security.istio.io PeerAuthentication");
}

absl::StatusOr<AuthorizationPolicyObject> AuthorizationPolicyFromJson(const json& object) {
  return ValidOrRejected<AuthorizationPolicyObject>(
      object, &k8s::ParsedFile::authorization_policies,
      &k8s::ParsedFile::rejected_authorization_policies, "security.istio.io AuthorizationPolicy");
}

absl::StatusOr<RequestAuthenticationObject> RequestAuthenticationFromJson(const json& object) {
  return ValidOrRejected<RequestAuthenticationObject>(
      object, &k8s::ParsedFile::request_authentications,
      &k8s::ParsedFile::rejected_request_authentications,
      "security.istio.io RequestAuthentication");
}

absl::StatusOr<json> RawObject(const json& object) { return object; }

std::unique_ptr<NamespaceInformer> NewNamespaceInformer(KubeApi& api, InformerOptions options) {
  return New<k8s::Namespace>(api, kNamespaceKind, NamespaceFromJson, std::move(options));
}
std::unique_ptr<PodInformer> NewPodInformer(KubeApi& api, InformerOptions options) {
  return New<k8s::Pod>(api, kPodKind, PodFromJson, std::move(options));
}
std::unique_ptr<ServiceInformer> NewServiceInformer(KubeApi& api, InformerOptions options) {
  return New<k8s::Service>(api, kServiceKind, ServiceFromJson, std::move(options));
}
std::unique_ptr<PeerAuthenticationInformer> NewPeerAuthenticationInformer(KubeApi& api,
                                                                          InformerOptions options) {
  return New<PeerAuthenticationObject>(api, kPeerAuthenticationKind, PeerAuthenticationFromJson,
                                       std::move(options));
}
std::unique_ptr<RawInformer> NewEndpointSliceInformer(KubeApi& api, InformerOptions options) {
  return New<json>(api, kEndpointSliceKind, RawObject, std::move(options));
}
std::unique_ptr<AuthorizationPolicyInformer> NewAuthorizationPolicyInformer(
    KubeApi& api, InformerOptions options) {
  return New<AuthorizationPolicyObject>(api, kAuthorizationPolicyKind, AuthorizationPolicyFromJson,
                                        std::move(options));
}
std::unique_ptr<RequestAuthenticationInformer> NewRequestAuthenticationInformer(
    KubeApi& api, InformerOptions options) {
  return New<RequestAuthenticationObject>(api, kRequestAuthenticationKind,
                                          RequestAuthenticationFromJson, std::move(options));
}

}  // namespace zm::kube

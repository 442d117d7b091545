#include "ca/token_review.h"

#include <algorithm>

#include "common/base/strings.h"
#include "common/jwt/jwt.h"
#include "common/k8s/yaml_fields.h"
#include "common/tls/spiffe.h"

namespace zm::ca {
namespace {

constexpr std::string_view kServiceAccountPrefix = "system:serviceaccount:";
constexpr char kPodNameExtra[] = "authentication.kubernetes.io/pod-name";
constexpr char kPodUidExtra[] = "authentication.kubernetes.io/pod-uid";

// The one value of user.extra[key]; empty when absent or not exactly one.
std::string OneExtra(const kube::TokenReviewResult& r, const std::string& key) {
  auto it = r.extra.find(key);
  return it != r.extra.end() && it->second.size() == 1 ? it->second.front() : std::string();
}

std::string Join(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& s : list) out += StrCat(out.empty() ? "" : ",", s);
  return out.empty() ? "none" : out;
}

}  // namespace

absl::StatusOr<NamespacedName> ParseNamespacedName(std::string_view value, std::string_view what) {
  const size_t slash = value.find('/');
  NamespacedName out;
  if (slash != std::string_view::npos) {
    out.namespace_name = std::string(value.substr(0, slash));
    out.name = std::string(value.substr(slash + 1));
  }
  if (slash == std::string_view::npos || !k8s::yaml::IsDnsLabel(out.namespace_name) ||
      !k8s::yaml::IsDnsSubdomain(out.name)) {
    return absl::InvalidArgumentError(
        StrCat(what, ": \"", value, "\" is not NAMESPACE/NAME (a DNS label, a DNS subdomain)"));
  }
  return out;
}

TokenReviewAuthenticator::TokenReviewAuthenticator(kube::KubeApi& api, PodNodeLookup node_of_pod,
                                                   TokenReviewOptions options)
    : api_(api), node_of_pod_(std::move(node_of_pod)), options_(std::move(options)) {}

absl::StatusOr<TokenReviewAuthenticator::Reviewed> TokenReviewAuthenticator::Review(
    std::string_view token) {
  auto review = kube::ReviewToken(api_, token, {options_.audience});
  if (!review.ok()) {
    return absl::UnavailableError(
        StrCat("cannot review the token (TokenReview failed): ", review.status().message()));
  }
  if (!review->authenticated) {
    return absl::UnauthenticatedError(
        StrCat("the API server did not authenticate the token: ",
               review->error.empty() ? std::string("no reason given") : review->error));
  }
  if (std::find(review->audiences.begin(), review->audiences.end(), options_.audience) ==
      review->audiences.end()) {
    return absl::UnauthenticatedError(StrCat("the token is not valid for audience ",
                                             options_.audience,
                                             " (its audiences: ", Join(review->audiences), ")"));
  }
  const std::string& user = review->username;
  auto not_sa = [&] {
    return absl::UnauthenticatedError(
        StrCat("user \"", user, "\" is not a service account (system:serviceaccount:NS:NAME)"));
  };
  if (!user.starts_with(kServiceAccountPrefix)) return not_sa();
  std::string_view rest = std::string_view(user).substr(kServiceAccountPrefix.size());
  const size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return not_sa();
  Reviewed out{
      .service_account = {std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))},
      .pod_name = OneExtra(*review, kPodNameExtra),
      .pod_uid = OneExtra(*review, kPodUidExtra),
  };
  if (!k8s::yaml::IsDnsLabel(out.service_account.namespace_name) ||
      !k8s::yaml::IsDnsSubdomain(out.service_account.name)) {
    return not_sa();
  }
  const auto now = options_.clock->Now();
  out.expires = now + options_.cache_ttl;
  // The token's own expiry bounds the cache entry. Its signature is the API server's business,
  // which has just accepted it; only `exp` is read here.
  if (auto jwt = jwt::Jwt::Parse(token); jwt.ok() && jwt->exp) {
    out.expires = std::min(out.expires,
                           std::chrono::system_clock::time_point(std::chrono::seconds(*jwt->exp)));
  }
  return out;
}

absl::StatusOr<Caller> TokenReviewAuthenticator::CallerOf(const Reviewed& r) const {
  const std::string sa = r.service_account.ToString();
  if (r.service_account == options_.ztunnel_service_account) {
    if (r.pod_name.empty() || r.pod_uid.empty()) {
      return absl::UnauthenticatedError(StrCat("the token of ztunnel service account ", sa,
                                               " is not bound to a pod (no ", kPodNameExtra,
                                               "/pod-uid): use a projected token"));
    }
    auto node = node_of_pod_(r.service_account.namespace_name, r.pod_name, r.pod_uid);
    if (!node.ok()) {
      return absl::Status(node.status().code(), StrCat("ztunnel ", sa, " (pod ", r.pod_name,
                                                       "): ", node.status().message()));
    }
    return Caller{.node = *node,
                  .description = StrCat("ztunnel of node ", *node, " (", sa, ", pod ",
                                        r.service_account.namespace_name, "/", r.pod_name, ")")};
  }
  auto id = tls::SpiffeId::ForServiceAccount(
      options_.trust_domain, r.service_account.namespace_name, r.service_account.name);
  if (!id.ok()) {
    return absl::UnauthenticatedError(
        StrCat("service account ", sa, " has no SPIFFE identity: ", id.status().message()));
  }
  return Caller{.identity = id->ToString(),
                .description = StrCat("service account ", sa,
                                      r.pod_name.empty() ? "" : StrCat(" (pod ", r.pod_name, ")"))};
}

void TokenReviewAuthenticator::Remember(std::string digest, const Reviewed& reviewed) {
  const auto now = options_.clock->Now();
  if (reviewed.expires <= now || options_.cache_capacity == 0) return;
  std::lock_guard lock(mu_);
  if (cache_.size() >= options_.cache_capacity && !cache_.contains(digest)) {
    std::erase_if(cache_, [&](const auto& e) { return e.second.expires <= now; });
  }
  if (cache_.size() >= options_.cache_capacity && !cache_.contains(digest)) {
    // Still full of live entries: the one that would expire first goes.
    auto first = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
      return a.second.expires < b.second.expires;
    });
    cache_.erase(first);
  }
  cache_.insert_or_assign(std::move(digest), reviewed);
}

absl::StatusOr<Caller> TokenReviewAuthenticator::Authenticate(std::string_view token) {
  std::string digest = TokenDigest(token);
  std::optional<Reviewed> reviewed;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(digest);
    if (it != cache_.end()) {
      if (it->second.expires > options_.clock->Now()) {
        reviewed = it->second;
      } else {
        cache_.erase(it);
      }
    }
  }
  if (!reviewed) {
    auto fresh = Review(token);
    if (!fresh.ok()) return fresh.status();  // CaService logs the refusal
    reviewed = *fresh;
    Remember(std::move(digest), *reviewed);
  }
  return CallerOf(*reviewed);
}

size_t TokenReviewAuthenticator::cached() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

}  // namespace zm::ca

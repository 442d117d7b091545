// L7Policies::Build: what applies at one waypoint, per destination (see l7.h).
#include <algorithm>
#include <set>

#include "common/base/strings.h"
#include "common/mesh/l7.h"

namespace zm::mesh {
namespace {

std::shared_ptr<const jwt::JwksSource> Failing(std::string message) {
  return std::make_shared<jwt::StaticJwksSource>(absl::UnavailableError(std::move(message)));
}

bool RefMatches(const authz::TargetRef& ref, std::string_view policy_ns,
                std::span<const authz::TargetKey> targets) {
  return std::any_of(targets.begin(), targets.end(), [&](const authz::TargetKey& t) {
    return t.kind == ref.kind && t.ns == policy_ns && t.name == ref.name;
  });
}

bool AnyRefMatches(const std::vector<authz::TargetRef>& refs, std::string_view ns,
                   std::span<const authz::TargetKey> targets) {
  return std::any_of(refs.begin(), refs.end(),
                     [&](const authz::TargetRef& r) { return RefMatches(r, ns, targets); });
}

// Key sources, one per inline document and per (jwksUri, timeout), shared by all destinations.
class JwksSources {
 public:
  JwksSources(const JwksProvider& provider) : provider_(provider) {}

  std::shared_ptr<const jwt::JwksSource> For(const jwt::JwtRuleSpec& spec) {
    if (!spec.jwks.empty()) {
      auto& s = inline_[spec.jwks];
      if (!s) s = jwt::StaticJwksSource::FromJson(spec.jwks);
      return s;
    }
    auto& s = remote_[{spec.jwks_uri, spec.timeout_ms}];
    if (!s) {
      if (provider_) s = provider_(spec);
      if (!s) s = Failing(StrCat("no key source for jwksUri ", spec.jwks_uri));
    }
    return s;
  }

 private:
  const JwksProvider& provider_;
  std::map<std::string, std::shared_ptr<const jwt::JwksSource>> inline_;
  std::map<std::pair<std::string, uint32_t>, std::shared_ptr<const jwt::JwksSource>> remote_;
};

struct RaChoice {
  std::vector<size_t> valid;     // indices into snapshot.request_authentications
  std::vector<size_t> rejected;  // indices into snapshot.rejected_request_authentications
  std::string Key() const {
    std::string k;
    for (size_t i : valid) k += StrCat("v", i, ",");
    for (size_t i : rejected) k += StrCat("r", i, ",");
    return k;
  }
};

RaChoice ChooseRequestAuthentications(const Snapshot& snapshot,
                                      std::span<const authz::TargetKey> targets) {
  RaChoice c;
  for (size_t i = 0; i < snapshot.request_authentications.size(); ++i) {
    const jwt::RequestAuthentication& ra = snapshot.request_authentications[i];
    if (AnyRefMatches(ra.target_refs, ra.ns, targets)) c.valid.push_back(i);
  }
  std::set<std::string> namespaces;
  for (const authz::TargetKey& t : targets) namespaces.insert(t.ns);
  for (size_t i = 0; i < snapshot.rejected_request_authentications.size(); ++i) {
    const jwt::RejectedRequestAuthentication& r = snapshot.rejected_request_authentications[i];
    const bool unreadable = r.selector_unreadable || r.target_refs_unreadable;
    if (AnyRefMatches(r.target_refs, r.ns, targets) ||
        (unreadable && namespaces.contains(r.ns))) {
      c.rejected.push_back(i);
    }
  }
  return c;
}

jwt::JwtRule RuleFromSpec(const jwt::JwtRuleSpec& spec, std::string name, JwksSources& sources) {
  jwt::JwtRule r;
  r.name = std::move(name);
  r.issuer = spec.issuer;
  r.audiences = spec.audiences;
  r.jwks = sources.For(spec);
  r.locations = spec.locations();
  r.output_payload_to_header = spec.output_payload_to_header;
  for (const jwt::ClaimToHeaderSpec& c : spec.output_claim_to_headers) {
    r.output_claim_to_headers.push_back({c.header, c.claim});
  }
  r.forward_original_token = spec.forward_original_token;
  r.space_delimited_claims = spec.space_delimited_claims;
  return r;
}

// The fail-closed rules of a rejected RequestAuthentication: any issuer, a key set that is
// never available, at each location set it declared (else the default locations).
std::vector<jwt::JwtRule> FailClosedRules(const jwt::RejectedRequestAuthentication& r) {
  auto source = Failing(StrCat("RequestAuthentication ", r.key(), " was rejected (", r.error,
                               "): tokens it could read are refused"));
  std::vector<jwt::TokenLocations> locations = r.locations;
  if (locations.empty()) locations.emplace_back();
  std::vector<jwt::JwtRule> out;
  for (jwt::TokenLocations& l : locations) {
    jwt::JwtRule rule;
    rule.name = StrCat("RequestAuthentication ", r.key(), " (rejected)");
    rule.jwks = source;
    rule.locations = std::move(l);
    out.push_back(std::move(rule));
  }
  return out;
}

}  // namespace

std::string WaypointPrincipal(const WaypointRef& waypoint, std::string_view trust_domain) {
  return StrCat(trust_domain, "/ns/", waypoint.ns, "/sa/", waypoint.name);
}

const L7Policies::Destination& L7Policies::For(const Workload* destination) const {
  if (destination != nullptr) {
    if (auto it = by_workload_.find(destination->key()); it != by_workload_.end()) {
      return *it->second;
    }
  }
  return *waypoint_only_;
}

std::shared_ptr<const L7Policies> L7Policies::Build(const Snapshot& snapshot,
                                                    std::string_view root_namespace,
                                                    const WaypointRef& waypoint,
                                                    const JwksProvider& jwks, const Clock& clock,
                                                    L7Options options) {
  auto p = std::shared_ptr<L7Policies>(new L7Policies());
  p->waypoint_ = waypoint;
  p->options_ = options;
  p->policy_set_ = authz::PolicySet::Build(
      snapshot.authorization_policies, snapshot.rejected_authorization_policies,
      authz::PolicySetOptions{.layer = authz::Layer::kL7,
                              .root_namespace = std::string(root_namespace),
                              .zero_trust = snapshot.default_policy == DefaultPolicy::kZeroTrust});
  for (const std::string& w : p->policy_set_->warnings()) {
    p->warnings_.push_back(StrCat("AuthorizationPolicy ", w));
  }
  for (const jwt::RejectedRequestAuthentication& r : snapshot.rejected_request_authentications) {
    p->warnings_.push_back(StrCat("RequestAuthentication ", r.key(), ": rejected (", r.error,
                                  "); where it applies, tokens it could read are refused"));
  }

  JwksSources sources(jwks);
  std::set<std::string> warned;
  std::map<std::string, std::shared_ptr<const Destination>> by_targets;
  std::map<std::string, std::shared_ptr<const Destination>> by_choice;  // authn part only

  auto make = [&](std::vector<authz::TargetKey> targets) -> std::shared_ptr<const Destination> {
    std::string tkey;
    for (const authz::TargetKey& t : targets) tkey += StrCat(t.kind, "/", t.ns, "/", t.name, ",");
    if (auto it = by_targets.find(tkey); it != by_targets.end()) return it->second;
    auto d = std::make_shared<Destination>();
    d->targets = std::move(targets);
    d->policies = p->policy_set_->ForTargets(d->targets);

    RaChoice choice = ChooseRequestAuthentications(snapshot, d->targets);
    if (auto it = by_choice.find(choice.Key()); it != by_choice.end()) {
      d->authenticator = it->second->authenticator;
      d->request_authentications = it->second->request_authentications;
      d->rule_origin = it->second->rule_origin;
    } else if (!choice.valid.empty() || !choice.rejected.empty()) {
      struct Entry {
        jwt::JwtRule rule;
        std::pair<std::string, std::optional<int>> origin;
      };
      std::vector<Entry> entries;
      for (size_t i : choice.rejected) {
        const auto& r = snapshot.rejected_request_authentications[i];
        d->request_authentications.push_back(r.key());
        for (jwt::JwtRule& rule : FailClosedRules(r)) {
          entries.push_back({std::move(rule), {r.key(), std::nullopt}});
        }
      }
      for (size_t i : choice.valid) {
        const jwt::RequestAuthentication& ra = snapshot.request_authentications[i];
        d->request_authentications.push_back(ra.key());
        for (size_t k = 0; k < ra.rules.size(); ++k) {
          entries.push_back(
              {RuleFromSpec(ra.rules[k],
                            StrCat("RequestAuthentication ", ra.key(), " jwtRules[", k, "]"),
                            sources),
               {ra.key(), static_cast<int>(k)}});
        }
      }
      // Istio merges the rules of every RequestAuthentication and sorts them by issuer.
      std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return a.rule.issuer < b.rule.issuer;
      });
      std::vector<jwt::JwtRule> rules;
      for (Entry& e : entries) {
        rules.push_back(e.rule);
        d->rule_origin.push_back(std::move(e.origin));
      }
      auto authn = jwt::Authenticator::Create(rules, clock);
      if (!authn.ok()) {
        // Validation let it through but the rules cannot be built: fail closed, every token at
        // the locations these rules read is refused.
        std::string why = StrCat("RequestAuthentication rules for ", tkey, " cannot be built: ",
                                 authn.status().message(), "; tokens are refused");
        if (warned.insert(why).second) p->warnings_.push_back(why);
        std::vector<jwt::JwtRule> closed;
        for (const jwt::JwtRule& r : rules) {
          jwt::JwtRule c;
          c.name = r.name;
          c.jwks = Failing(why);
          c.locations = r.locations;
          closed.push_back(std::move(c));
        }
        authn = jwt::Authenticator::Create(std::move(closed), clock);
      }
      if (authn.ok()) {
        d->authenticator = std::make_shared<const jwt::Authenticator>(*std::move(authn));
      }
      by_choice.emplace(choice.Key(), d);
    }
    by_targets.emplace(tkey, d);
    return d;
  };

  const std::vector<authz::TargetKey> base = {
      {"Gateway", waypoint.ns, waypoint.name},
      {"GatewayClass", std::string(root_namespace), std::string(kWaypointGatewayClass)}};
  p->waypoint_only_ = make(base);
  for (const Workload& w : snapshot.workloads) {
    std::vector<authz::TargetKey> targets = base;
    for (const Service& s : snapshot.services) {
      if (s.ns == w.ns && !s.selector.empty() && SelectorMatches(s.selector, w.labels)) {
        targets.push_back({"Service", s.ns, s.name});
      }
    }
    p->by_workload_.emplace(w.key(), make(std::move(targets)));
  }
  return p;
}

}  // namespace zm::mesh

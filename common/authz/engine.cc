#include "common/authz/engine.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "common/base/strings.h"

namespace zm::authz {
namespace {

// The peer identity split into the attributes policies read.
struct Peer {
  std::string_view principal;
  std::string_view trust_domain;
  std::string_view ns;
  std::string service_account;  // "ns/sa"
  bool identified = false;      // a principal of the SPIFFE path shape
};

Peer SplitPrincipal(const std::optional<std::string>& principal) {
  Peer p;
  if (!principal || principal->empty()) return p;
  p.principal = *principal;
  // "<td>/ns/<ns>/sa/<sa>"
  std::string_view s = *principal;
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (parts.size() < 6) {
    size_t slash = s.find('/', start);
    parts.push_back(s.substr(start, slash == std::string_view::npos ? s.npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 5 && parts[1] == "ns" && parts[3] == "sa" && !parts[0].empty() &&
      !parts[2].empty() && !parts[4].empty()) {
    p.trust_domain = parts[0];
    p.ns = parts[2];
    p.service_account = StrCat(parts[2], "/", parts[4]);
    p.identified = true;
  }
  return p;
}

struct Resolved {
  const Attributes& a;
  Peer peer;
};

ValueMatcher CompileValue(Attr attr, const std::string& v, std::string_view policy_ns) {
  switch (attr) {
    case Attr::kSourceIp:
    case Attr::kRemoteIp:
    case Attr::kDestinationIp:
      return *Cidr::Parse(v);  // validated
    case Attr::kDestinationPort: {
      unsigned port = 0;
      std::from_chars(v.data(), v.data() + v.size(), port);
      return static_cast<uint16_t>(port);
    }
    case Attr::kServiceAccount:
      return StringMatcher::Parse(v.find('/') == std::string::npos ? StrCat(policy_ns, "/", v) : v);
    case Attr::kPath:
      if (IsPathTemplate(v)) return *PathTemplate::Parse(v);
      return StringMatcher::Parse(v);
    case Attr::kRequestPrincipal:
      return RequestPrincipalMatcher::Parse(v);
    case Attr::kHost:
      return StringMatcher::Parse(v, /*ignore_case=*/true);
    case Attr::kNamespace:
      return StringMatcher::Parse(v, false, /*glob=*/true);
    case Attr::kHeader:
      return StringMatcher::Parse(v, false, false, /*any_for_star=*/true);
    default:
      return StringMatcher::Parse(v);
  }
}

FieldMatch CompileField(Attr attr, std::vector<std::string> args, const ValueList& vl,
                        std::string_view policy_ns) {
  FieldMatch f{.attr = attr, .args = std::move(args)};
  for (const std::string& v : vl.values) f.values.push_back(CompileValue(attr, v, policy_ns));
  for (const std::string& v : vl.not_values) {
    f.not_values.push_back(CompileValue(attr, v, policy_ns));
  }
  return f;
}

// What the layer did to one rule.
struct RuleOutcome {
  bool dropped = false;                   // ALLOW at L4 with HTTP fields
  std::set<std::string> stripped_fields;  // DENY at L4: the HTTP fields removed
};

std::optional<CompiledRule> CompileRule(const Rule& rule, int index, const AuthorizationPolicy& p,
                                        Layer layer, RuleOutcome& out) {
  CompiledRule r{.index = index, .has_from = !rule.from.empty(), .has_to = !rule.to.empty()};
  // True when the field can be kept; records what L4 does with an HTTP-only one.
  auto keep = [&](Attr attr, std::string_view name) {
    if (layer == Layer::kL7 || AvailableAtL4(attr)) return true;
    if (p.action == Action::kAllow) out.dropped = true;
    out.stripped_fields.insert(std::string(name));
    return false;
  };
  for (const Source& s : rule.from) {
    Match m;
    for (const SourceField& f : SourceFields()) {
      const ValueList& vl = s.*f.member;
      if (vl.empty() || !keep(f.attr, vl.values.empty() ? f.not_name : f.name)) continue;
      m.fields.push_back(CompileField(f.attr, {}, vl, p.ns));
    }
    r.from.push_back(std::move(m));
  }
  for (const Operation& o : rule.to) {
    Match m;
    for (const OperationField& f : OperationFields()) {
      const ValueList& vl = o.*f.member;
      if (vl.empty() || !keep(f.attr, vl.values.empty() ? f.not_name : f.name)) continue;
      m.fields.push_back(CompileField(f.attr, {}, vl, p.ns));
    }
    r.to.push_back(std::move(m));
  }
  for (const Condition& c : rule.when) {
    std::string error;
    auto key = ParseConditionKey(c.key, &error);
    if (!key || !keep(key->attr, c.key)) continue;
    std::vector<std::string> args = key->args;
    if (key->attr == Attr::kHeader) args[0] = AsciiLower(args[0]);
    Match m;
    m.fields.push_back(CompileField(key->attr, std::move(args), c.match, p.ns));
    r.when.push_back(std::move(m));
  }
  if (out.dropped) return std::nullopt;
  return r;
}

std::string JoinSet(const std::set<std::string>& s) {
  std::string out;
  for (const std::string& x : s) out += StrCat(out.empty() ? "" : ", ", x);
  return out;
}

// Whether one value matcher accepts a string value.
bool MatchString(const ValueMatcher& m, std::string_view v) {
  if (const auto* s = std::get_if<StringMatcher>(&m)) return s->Matches(v);
  if (const auto* t = std::get_if<PathTemplate>(&m)) return t->Matches(v);
  return false;
}

bool AnyString(const std::vector<ValueMatcher>& ms, std::string_view v) {
  for (const ValueMatcher& m : ms) {
    if (MatchString(m, v)) return true;
  }
  return false;
}

bool AnyStringOfList(const std::vector<ValueMatcher>& ms, const std::vector<std::string>& vs) {
  for (const std::string& v : vs) {
    if (AnyString(ms, v)) return true;
  }
  return false;
}

bool AnyIp(const std::vector<ValueMatcher>& ms, const IpAddr& ip) {
  for (const ValueMatcher& m : ms) {
    if (const auto* c = std::get_if<Cidr>(&m); c && c->Contains(ip)) return true;
  }
  return false;
}

// nullopt: the attribute is absent. Else whether any of `ms` matches it.
std::optional<bool> Evaluate(const FieldMatch& f, const std::vector<ValueMatcher>& ms,
                             const Resolved& r) {
  const Attributes& a = r.a;
  auto str = [&](std::string_view v, bool present) -> std::optional<bool> {
    if (!present) return std::nullopt;
    return AnyString(ms, v);
  };
  switch (f.attr) {
    case Attr::kPrincipal:
      return str(r.peer.principal, !r.peer.principal.empty());
    case Attr::kNamespace:
      return str(r.peer.ns, r.peer.identified);
    case Attr::kServiceAccount:
      return str(r.peer.service_account, r.peer.identified);
    case Attr::kTrustDomain:
      return str(r.peer.trust_domain, r.peer.identified);
    case Attr::kSourceIp:
      if (!a.source_ip) return std::nullopt;
      return AnyIp(ms, *a.source_ip);
    case Attr::kRemoteIp: {
      const std::optional<IpAddr>& ip =
          a.http && a.http->remote_ip ? a.http->remote_ip : a.source_ip;
      if (!ip) return std::nullopt;
      return AnyIp(ms, *ip);
    }
    case Attr::kDestinationIp:
      if (!a.destination_ip) return std::nullopt;
      return AnyIp(ms, *a.destination_ip);
    case Attr::kDestinationPort:
      for (const ValueMatcher& m : ms) {
        if (const auto* p = std::get_if<uint16_t>(&m); p && *p == a.destination_port) return true;
      }
      return false;
    case Attr::kHost:
      return a.http ? str(a.http->host, true) : std::nullopt;
    case Attr::kMethod:
      return a.http ? str(a.http->method, true) : std::nullopt;
    case Attr::kPath:
      return a.http ? str(a.http->path, true) : std::nullopt;
    case Attr::kSni:
      return a.http ? str(a.http->sni, !a.http->sni.empty()) : std::nullopt;
    case Attr::kHeader: {
      if (!a.http) return std::nullopt;
      // Repeated headers are joined with ',' before matching (§8.5).
      std::string joined;
      bool present = false;
      for (const auto& [name, value] : a.http->headers) {
        if (name.size() != f.args[0].size() || AsciiLower(name) != f.args[0]) continue;
        if (present) joined += ',';
        joined += value;
        present = true;
      }
      return str(joined, present);
    }
    case Attr::kRequestPrincipal:
      if (!a.jwt) return std::nullopt;
      for (const ValueMatcher& m : ms) {
        if (const auto* rp = std::get_if<RequestPrincipalMatcher>(&m);
            rp && rp->Matches(a.jwt->issuer, a.jwt->subject)) {
          return true;
        }
      }
      return false;
    case Attr::kAudiences:
      if (!a.jwt || a.jwt->audiences.empty()) return std::nullopt;
      return AnyStringOfList(ms, a.jwt->audiences);
    case Attr::kPresenter:
      if (!a.jwt || !a.jwt->presenter) return std::nullopt;
      return AnyString(ms, *a.jwt->presenter);
    case Attr::kClaim: {
      if (!a.jwt || !a.jwt->claim) return std::nullopt;
      auto values = a.jwt->claim(f.args);
      if (!values) return std::nullopt;
      return AnyStringOfList(ms, *values);
    }
  }
  return std::nullopt;
}

bool FieldHolds(const FieldMatch& f, const Resolved& r) {
  if (!f.values.empty()) {
    // Absent attribute: a positive list never matches.
    if (Evaluate(f, f.values, r) != std::optional<bool>(true)) return false;
  }
  if (!f.not_values.empty()) {
    // Absent attribute: a negative list is satisfied.
    if (Evaluate(f, f.not_values, r) == std::optional<bool>(true)) return false;
  }
  return true;
}

bool MatchHolds(const Match& m, const Resolved& r) {
  for (const FieldMatch& f : m.fields) {
    if (!FieldHolds(f, r)) return false;
  }
  return true;
}

bool RuleHolds(const CompiledRule& rule, const Resolved& r) {
  if (rule.has_from && std::none_of(rule.from.begin(), rule.from.end(),
                                    [&](const Match& m) { return MatchHolds(m, r); })) {
    return false;
  }
  if (rule.has_to && std::none_of(rule.to.begin(), rule.to.end(),
                                  [&](const Match& m) { return MatchHolds(m, r); })) {
    return false;
  }
  for (const Match& m : rule.when) {
    if (!MatchHolds(m, r)) return false;
  }
  return true;
}

// The index of the first rule that holds, or nullopt.
std::optional<int> FirstMatchingRule(const CompiledPolicy& p, const Resolved& r,
                                     std::string_view dest_ns) {
  if (p.origin == CompiledPolicy::Origin::kZeroTrustDefault) {
    if (r.peer.identified && r.peer.ns == dest_ns) return 0;
    return std::nullopt;
  }
  if (p.origin == CompiledPolicy::Origin::kZeroTrustJwt) {
    const JwtIdentity* j = r.a.jwt;
    if (j == nullptr || j->issuer.empty() || j->subject.empty()) return 0;
    return std::nullopt;
  }
  for (const CompiledRule& rule : p.rules) {
    if (RuleHolds(rule, r)) return rule.index;
  }
  return std::nullopt;
}

std::string RuleText(const CompiledPolicy& p, int rule) {
  if (p.origin == CompiledPolicy::Origin::kRejected) return "(rejected policy)";
  return StrCat("rule ", rule);
}

}  // namespace

std::optional<CompiledPolicy> CompilePolicy(const AuthorizationPolicy& p, Layer layer,
                                            std::string* warning) {
  if (layer == Layer::kL4 &&
      (p.has_target_refs() || p.action == Action::kAudit || p.action == Action::kCustom)) {
    return std::nullopt;
  }
  CompiledPolicy c{.key = p.key(),
                   .ns = p.ns,
                   .selector = p.selector,
                   .action = p.action,
                   .dry_run = p.dry_run,
                   .target_refs = p.target_refs,
                   .provider = p.provider};
  std::vector<int> dropped;
  std::set<std::string> http_fields;
  for (size_t i = 0; i < p.rules.size(); ++i) {
    RuleOutcome outcome;
    auto rule = CompileRule(p.rules[i], static_cast<int>(i), p, layer, outcome);
    http_fields.insert(outcome.stripped_fields.begin(), outcome.stripped_fields.end());
    if (rule) {
      c.rules.push_back(std::move(*rule));
    } else {
      dropped.push_back(static_cast<int>(i));
    }
  }
  if (!http_fields.empty()) {
    if (p.action == Action::kAllow) {
      std::string which;
      for (int i : dropped) which += StrCat(which.empty() ? "" : ", ", i);
      c.note = StrCat("ALLOW rule(s) ", which, " use HTTP fields (", JoinSet(http_fields),
                      ") and never match at L4",
                      c.rules.empty() ? "; the policy admits nothing here" : "");
    } else {
      c.note = StrCat("DENY uses HTTP fields (", JoinSet(http_fields),
                      "): enforced at L4 as a broader deny (those fields are ignored, so it "
                      "denies more)");
    }
    if (warning) {
      *warning = StrCat(p.key(), ": ", c.note,
                        "; put the workload behind a waypoint to enforce it per request");
    }
  }
  return c;
}

void PolicySet::LabelIndex::Add(const CompiledPolicy* p) {
  const auto& [k, v] = *p->selector->begin();
  by_label[{k, v}].push_back(p);
}

void PolicySet::LabelIndex::Collect(const StringMap& labels,
                                    std::vector<const CompiledPolicy*>& out) const {
  if (by_label.empty()) return;
  for (const auto& kv : labels) {
    auto it = by_label.find(kv);
    if (it == by_label.end()) continue;
    for (const CompiledPolicy* p : it->second) {
      bool all = std::all_of(p->selector->begin(), p->selector->end(), [&](const auto& want) {
        auto have = labels.find(want.first);
        return have != labels.end() && have->second == want.second;
      });
      if (all) out.push_back(p);
    }
  }
}

std::shared_ptr<const PolicySet> PolicySet::Build(
    std::span<const AuthorizationPolicy> policies,
    std::span<const RejectedAuthorizationPolicy> rejected, PolicySetOptions options) {
  auto set = std::shared_ptr<PolicySet>(new PolicySet());
  set->options_ = std::move(options);
  const Layer layer = set->options_.layer;

  std::vector<RejectedAuthorizationPolicy> failed(rejected.begin(), rejected.end());
  for (const AuthorizationPolicy& written : policies) {
    // The agent validated already; a policy from elsewhere (or a newer agent) is checked
    // again, and one that fails here fails closed like any rejected policy.
    AuthorizationPolicy p = written;
    std::vector<std::string> errors;
    Validate(p, errors);
    if (!errors.empty()) {
      failed.push_back(RejectedAuthorizationPolicy{.name = p.name,
                                                   .ns = p.ns,
                                                   .action = p.action,
                                                   .selector = p.selector,
                                                   .has_target_refs = p.has_target_refs(),
                                                   .source = p.source,
                                                   .error = errors.front()});
      continue;
    }
    std::string warning;
    auto compiled = CompilePolicy(p, layer, &warning);
    if (!warning.empty()) set->warnings_.push_back(std::move(warning));
    if (compiled) set->policies_.push_back(std::make_unique<CompiledPolicy>(std::move(*compiled)));
  }
  for (const RejectedAuthorizationPolicy& r : failed) {
    if (layer == Layer::kL4 && r.has_target_refs) continue;  // the waypoint's
    if (r.action == Action::kAudit) continue;                // never decides
    auto c = std::make_unique<CompiledPolicy>();
    c->key = r.key();
    c->ns = r.ns;
    if (r.has_target_refs) {
      // Readable refs are not kept in the rejected form: at L7 it attaches namespace-wide to
      // the waypoint of its namespace (see ForTargets), failing closed there.
      c->target_refs.push_back(TargetRef{.group = "gateway.networking.k8s.io", .kind = "*"});
    }
    c->selector = r.selector_unreadable ? std::nullopt : r.selector;
    c->origin = CompiledPolicy::Origin::kRejected;
    c->note = StrCat("rejected: ", r.error);
    if (r.action == Action::kAllow) {
      c->action = Action::kAllow;  // no rules: admits nothing
    } else {
      c->action = Action::kDeny;
      c->rules.push_back(CompiledRule{});  // matches everything
    }
    set->warnings_.push_back(StrCat(
        r.key(), ": rejected (", r.error, "); enforced as ",
        c->action == Action::kAllow ? "an ALLOW that admits nothing" : "a DENY of everything",
        " on its workloads"));
    set->policies_.push_back(std::move(c));
  }
  std::sort(set->policies_.begin(), set->policies_.end(),
            [](const auto& a, const auto& b) { return a->key < b->key; });
  for (size_t i = 0; i < set->policies_.size(); ++i) {
    set->policies_[i]->order = static_cast<int>(i);
  }

  for (const auto& p : set->policies_) {
    if (layer == Layer::kL7) {
      for (const TargetRef& r : p->target_refs) {
        // A GatewayClass is named from the root namespace; other kinds are in the policy's.
        set->by_target_[TargetKey{r.kind, p->ns, r.name}].push_back(p.get());
      }
      continue;
    }
    const bool wide = !p->selector || p->selector->empty();
    if (p->ns == set->options_.root_namespace) {
      if (wide) {
        set->mesh_wide_.push_back(p.get());
      } else {
        set->root_selected_.Add(p.get());
      }
    } else {
      NamespaceIndex& idx = set->by_ns_[p->ns];
      if (wide) {
        idx.wide.push_back(p.get());
      } else {
        idx.selected.Add(p.get());
      }
    }
  }
  if (set->options_.zero_trust) {
    set->zero_trust_ = std::make_unique<CompiledPolicy>(CompiledPolicy{
        .key = "(zero-trust default)",
        .ns = set->options_.root_namespace,
        .action = Action::kAllow,
        .origin = CompiledPolicy::Origin::kZeroTrustDefault,
        .note = "--default-policy=zero-trust: peers of the destination's own namespace"});
    if (layer == Layer::kL7) {
      set->zero_trust_jwt_ = std::make_unique<CompiledPolicy>(CompiledPolicy{
          .key = "(zero-trust default: end-user JWT)",
          .ns = set->options_.root_namespace,
          .action = Action::kDeny,
          .origin = CompiledPolicy::Origin::kZeroTrustJwt,
          .note = "--default-policy=zero-trust: every request needs a verified end-user JWT"});
    }
  }
  return set;
}

std::vector<const CompiledPolicy*> PolicySet::ForTargets(
    std::span<const TargetKey> targets) const {
  std::vector<const CompiledPolicy*> out;
  for (const TargetKey& t : targets) {
    if (auto it = by_target_.find(t); it != by_target_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    // A rejected policy whose refs were readable but not kept: any target in its namespace.
    if (auto it = by_target_.find(TargetKey{"*", t.ns, ""}); it != by_target_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }
  std::sort(out.begin(), out.end(),
            [](const CompiledPolicy* a, const CompiledPolicy* b) { return a->order < b->order; });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (zero_trust_jwt_) out.push_back(zero_trust_jwt_.get());
  if (zero_trust_) out.push_back(zero_trust_.get());
  return out;
}

std::vector<const CompiledPolicy*> PolicySet::ForWorkload(std::string_view ns,
                                                          const StringMap& labels) const {
  std::vector<const CompiledPolicy*> out(mesh_wide_.begin(), mesh_wide_.end());
  root_selected_.Collect(labels, out);
  if (ns != options_.root_namespace) {
    if (auto it = by_ns_.find(ns); it != by_ns_.end()) {
      out.insert(out.end(), it->second.wide.begin(), it->second.wide.end());
      it->second.selected.Collect(labels, out);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const CompiledPolicy* a, const CompiledPolicy* b) { return a->order < b->order; });
  if (zero_trust_) out.push_back(zero_trust_.get());
  return out;
}

Decision PolicySet::Evaluate(std::span<const CompiledPolicy* const> applicable,
                             std::string_view dest_ns, const Attributes& attrs,
                             bool want_trace) const {
  Resolved r{attrs, SplitPrincipal(attrs.principal)};
  Decision d;
  auto trace = [&](const CompiledPolicy& p, std::optional<int> rule) {
    if (!want_trace) return;
    std::string line =
        StrCat(ActionName(p.action), p.dry_run ? " (dry-run) " : " ", p.key, ": ",
               rule ? StrCat(RuleText(p, *rule), " matches") : std::string("no rule matches"));
    if (!p.note.empty()) line += StrCat(" [", p.note, "]");
    d.trace.push_back(std::move(line));
  };

  // Step 1 (L7): CUSTOM policies that match name their providers; AUDIT matches are reported.
  for (const CompiledPolicy* p : applicable) {
    if (p->action != Action::kCustom && p->action != Action::kAudit) continue;
    auto rule = FirstMatchingRule(*p, r, dest_ns);
    trace(*p, rule);
    if (!rule || p->dry_run) continue;
    if (p->action == Action::kAudit) {
      d.audit.push_back(p->key);
      continue;
    }
    d.custom_policies.push_back(p->key);
    if (std::find(d.custom_providers.begin(), d.custom_providers.end(), p->provider) ==
        d.custom_providers.end()) {
      d.custom_providers.push_back(p->provider);
    }
  }

  // Step 2: any DENY that matches denies.
  for (const CompiledPolicy* p : applicable) {
    if (p->action != Action::kDeny) continue;
    auto rule = FirstMatchingRule(*p, r, dest_ns);
    trace(*p, rule);
    if (!rule) continue;
    if (p->dry_run) {
      d.dry_run.push_back(StrCat("dry-run DENY ", p->key, " ", RuleText(*p, *rule), " would deny"));
      continue;
    }
    if (d.allowed) {
      d.allowed = false;
      if (p->origin == CompiledPolicy::Origin::kZeroTrustJwt) {
        d.implicit = true;
        d.reason = "denied by the zero-trust default: the request carries no verified end-user JWT";
      } else if (p->origin == CompiledPolicy::Origin::kRejected) {
        d.policy = p->key;
        d.reason = StrCat("denied by ", p->key, ", a policy that failed validation (", p->note, ")");
      } else {
        d.policy = p->key;
        d.rule = *rule;
        d.reason = StrCat("denied by DENY policy ", p->key, " rule ", *rule);
      }
      if (!want_trace) return d;
    }
  }

  // Steps 3-5: ALLOW policies.
  int allow_count = 0;
  bool allowed_by_allow = false;
  for (const CompiledPolicy* p : applicable) {
    if (p->action != Action::kAllow) continue;
    auto rule = FirstMatchingRule(*p, r, dest_ns);
    trace(*p, rule);
    if (p->dry_run) {
      if (rule) {
        d.dry_run.push_back(
            StrCat("dry-run ALLOW ", p->key, " ", RuleText(*p, *rule), " would allow"));
      }
      continue;
    }
    ++allow_count;
    if (rule && !allowed_by_allow) {
      allowed_by_allow = true;
      if (d.allowed) {
        if (p->origin == CompiledPolicy::Origin::kZeroTrustDefault) {
          d.implicit = true;
          d.reason = StrCat(
              "allowed by the zero-trust default: the source identity is in the "
              "destination's namespace ",
              dest_ns);
        } else {
          d.policy = p->key;
          d.rule = *rule;
          d.reason = StrCat("allowed by ALLOW policy ", p->key, " rule ", *rule);
        }
      }
    }
  }
  if (!d.allowed) return d;
  if (allow_count == 0) {
    d.reason = "no ALLOW policy applies and no DENY policy matches: allowed";
    return d;
  }
  if (allowed_by_allow) return d;
  d.allowed = false;
  // The ALLOW policies that applied, for the reason (the first few: a deny may face thousands).
  std::string allow_names;
  int named = 0, more = 0;
  for (const CompiledPolicy* p : applicable) {
    if (p->action != Action::kAllow || p->dry_run ||
        p->origin == CompiledPolicy::Origin::kZeroTrustDefault) {
      continue;
    }
    if (named == 5) {
      ++more;
      continue;
    }
    allow_names += StrCat(named++ == 0 ? "" : ", ", p->key);
  }
  if (more > 0) allow_names += StrCat(" and ", more, " more");
  std::string source = r.peer.identified
                           ? StrCat("source namespace ", r.peer.ns)
                           : (attrs.principal ? StrCat("source ", *attrs.principal)
                                              : std::string("a plaintext source (no identity)"));
  if (zero_trust_ &&
      std::find(applicable.begin(), applicable.end(), zero_trust_.get()) != applicable.end()) {
    d.implicit = allow_names.empty();
    d.reason = StrCat(
        "denied: the zero-trust default admits only the destination's namespace ", dest_ns,
        allow_names.empty() ? "" : StrCat(", and no ALLOW policy (", allow_names, ") matches"),
        "; ", source);
  } else {
    d.reason =
        StrCat("denied: ALLOW policies apply (", allow_names, ") but none matches; ", source);
  }
  return d;
}

}  // namespace zm::authz

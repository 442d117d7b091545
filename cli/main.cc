// zmeshctl: the operator's view of zmesh. `zmeshctl bpf ...` reads the pinned capture layer
// directly (read-only; works with no agent running); `zmeshctl explain` evaluates the policies
// of a manifest set offline (cli/explain.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/bpf_view.h"
#include "cli/explain.h"

namespace {

// The pin dir from --pin-dir, or <pin-root>/<node>, or the only node under pin-root.
std::string ResolvePinDir(const std::string& pin_dir, const std::string& pin_root,
                          const std::string& node, std::string* error) {
  if (!pin_dir.empty()) return pin_dir;
  if (!node.empty()) return pin_root + "/" + node;
  std::vector<std::string> nodes;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(pin_root, ec)) {
    if (e.is_directory()) nodes.push_back(e.path().filename());
  }
  if (nodes.size() == 1) return pin_root + "/" + nodes[0];
  if (nodes.empty()) {
    *error = "no zmesh pins under " + pin_root + " (is the agent installed on this node?)";
  } else {
    *error = "several nodes under " + pin_root + "; pick one with --node:";
    for (const auto& n : nodes) *error += " " + n;
  }
  return "";
}

struct Cmd {
  const char* name;
  const char* help;
  std::string (*render)(const zm::cli::BpfState&);
  nlohmann::json (*json)(const zm::cli::BpfState&);
};

constexpr Cmd kCmds[] = {
    {"status", "programs, links (defunct ones too) and map fill", zm::cli::RenderStatus,
     zm::cli::StatusJson},
    {"pods", "per pod: cookie, IPs, outbound/inbound capture, listener, sk_lookup link",
     zm::cli::RenderPods, zm::cli::PodsJson},
    {"origdst", "original destinations waiting for ztunnel", zm::cli::RenderOrigDst,
     zm::cli::OrigDstJson},
    {"bypass", "connections that skip inbound capture, and why", zm::cli::RenderBypass,
     zm::cli::BypassJson},
    {"stats", "redirect/skip/drop counters per reason", zm::cli::RenderStats,
     zm::cli::StatsJson},
    {"config", "zm_config: marks, ztunnel identity, node netns", zm::cli::RenderConfig,
     zm::cli::ConfigJson},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zmeshctl: see what zmesh does on this node"};
  app.require_subcommand(1);
  std::string output = "table", node, pin_root = "/sys/fs/bpf/zmesh", pin_dir;
  auto* bpf = app.add_subcommand("bpf", "the eBPF capture layer, read from its pins");
  bpf->require_subcommand(1);
  bpf->add_option("--node", node, "node name (its pins are <pin-root>/<node>)");
  bpf->add_option("--pin-root", pin_root)->capture_default_str();
  bpf->add_option("--pin-dir", pin_dir, "a node's pin dir, instead of --node");
  bpf->add_option("-o,--output", output, "table|json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  const Cmd* chosen = nullptr;
  for (const Cmd& c : kCmds) {
    // Options given after the leaf (`bpf pods --node x`) belong to `bpf`.
    bpf->add_subcommand(c.name, c.help)->fallthrough()->callback([&chosen, &c] { chosen = &c; });
  }

  zm::cli::ExplainOptions ex;
  std::string from_principal, from_ip, via_waypoint, method, path, host, jwt, now;
  std::string explain_output = "table";
  auto* explain = app.add_subcommand(
      "explain", "which policy and rule decide a connection (or request), and at which hop");
  explain->add_option("--manifests", ex.manifests, "Kubernetes YAML: a file or a directory")
      ->required()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  explain->add_option("--root-namespace", ex.root_namespace)->capture_default_str();
  explain->add_option("--trust-domain", ex.trust_domain)->capture_default_str();
  explain->add_option("--to", ex.to, "destination pod, NAMESPACE/POD")->required();
  explain->add_option("--port", ex.port, "destination (workload) port")->required();
  auto* principal_opt = explain->add_option("--from-principal", from_principal,
                                            "source identity, e.g. cluster.local/ns/foo/sa/bar");
  explain->add_flag("--plaintext", ex.plaintext, "the source has no identity (no mTLS)");
  auto* from_ip_opt = explain->add_option("--from-ip", from_ip, "source address");
  explain->add_option("--layer", ex.layer, "l4 (node tunnel) or l7 (waypoint)")
      ->capture_default_str();
  auto* waypoint_opt = explain->add_option("--via-waypoint", via_waypoint, "waypoint name");
  auto* method_opt = explain->add_option("--method", method);
  auto* path_opt = explain->add_option("--path", path);
  auto* host_opt = explain->add_option("--host", host);
  explain->add_option("--header", ex.headers, "NAME=VALUE (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* jwt_opt = explain->add_option("--jwt", jwt, "end-user token");
  explain
      ->add_option("--jwks", ex.jwks_files,
                   "ISSUER_OR_URI=FILE: the key set of a jwksUri rule (repeatable; l7)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* now_opt = explain->add_option("--now", now, "evaluation time, UNIX seconds");
  explain->add_option("--default-policy", ex.default_policy, "upstream or zero-trust, as the agent")
      ->capture_default_str();
  explain->add_option("-o,--output", explain_output, "table|json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 exits 0 for --help, else 106+; explain promises 2 for bad input.
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (*explain) {
    auto set = [](CLI::Option* opt, const std::string& v, std::optional<std::string>& out) {
      if (opt->count() > 0) out = v;
    };
    set(principal_opt, from_principal, ex.from_principal);
    set(from_ip_opt, from_ip, ex.from_ip);
    set(waypoint_opt, via_waypoint, ex.via_waypoint);
    set(method_opt, method, ex.method);
    set(path_opt, path, ex.path);
    set(host_opt, host, ex.host);
    set(jwt_opt, jwt, ex.jwt);
    set(now_opt, now, ex.now);
    auto result = zm::cli::Explain(ex);
    if (!result.ok()) {
      std::fprintf(stderr, "zmeshctl explain: %s\n",
                   std::string(result.status().message()).c_str());
      return 2;
    }
    if (explain_output == "json") {
      std::cout << zm::cli::ExplainJson(*result).dump() << "\n";
    } else {
      std::cout << zm::cli::RenderExplain(*result);
    }
    return 0;
  }
  if (chosen == nullptr) return 2;

  std::string error;
  std::string dir = ResolvePinDir(pin_dir, pin_root, node, &error);
  if (dir.empty()) {
    std::fprintf(stderr, "zmeshctl: %s\n", error.c_str());
    return 1;
  }
  if (!std::filesystem::is_directory(dir)) {
    std::fprintf(stderr, "zmeshctl: %s: no such pin dir (is the agent installed for this node?)\n",
                 dir.c_str());
    return 1;
  }
  zm::cli::BpfState state = zm::cli::ReadBpfState(dir);
  if (output == "json") {
    std::cout << chosen->json(state).dump(2) << "\n";
  } else {
    std::cout << chosen->render(state);
  }
  // Partial reads still print; exit non-zero so scripts notice.
  return state.errors.empty() ? 0 : 1;
}

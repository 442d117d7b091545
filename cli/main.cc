// zmeshctl: the operator's view of zmesh. `zmeshctl bpf ...` reads the pinned capture layer
// directly (read-only; works with no agent running).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/bpf_view.h"

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
  CLI11_PARSE(app, argc, argv);
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

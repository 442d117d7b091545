#include "agent/cni_install.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <set>

#include "common/base/file.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/cni/protocol.h"
#include "common/k8s/manifest.h"

namespace zm::agent {
namespace {

using nlohmann::json;

spdlog::logger& L() {
  static spdlog::logger& l = Log("cni");
  return l;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// libcni's extensions, in its order of preference for one name.
bool IsNetworkConfigName(std::string_view name) {
  if (name.empty() || name.front() == '.') return false;
  return EndsWith(name, ".conf") || EndsWith(name, ".conflist") || EndsWith(name, ".json");
}

absl::StatusOr<std::set<std::string>> NetworkConfigNames(const std::string& conf_dir) {
  DIR* d = ::opendir(conf_dir.c_str());
  if (d == nullptr) return ErrnoError("opendir", conf_dir);
  std::set<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    if (IsNetworkConfigName(e->d_name)) names.insert(e->d_name);
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoError("readdir", conf_dir, err);
  return names;
}

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(std::string text, k8s::ReadManifestBytes(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(StrCat(path, ": not a JSON object"));
  }
  return j;
}

bool IsOurs(const json& plugin) {
  auto type = plugin.is_object() ? plugin.find("type") : plugin.end();
  return type != plugin.end() && type->is_string() && *type == cni::kPluginType;
}

// A whole file (the plugin binary: no size limit).
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("open", path);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return ErrnoError("read", path);
  return out;
}

std::string Pretty(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace

absl::StatusOr<std::string> PrimaryNetworkConfig(const std::string& conf_dir) {
  ZM_ASSIGN_OR_RETURN(std::set<std::string> names, NetworkConfigNames(conf_dir));
  if (names.empty()) {
    return absl::NotFoundError(
        StrCat("no CNI network configuration in ", conf_dir, " yet (*.conf, *.conflist, *.json)"));
  }
  return StrCat(conf_dir, "/", *names.begin());
}

json PluginEntry(const CniInstallOptions& options) {
  return {{"type", cni::kPluginType},
          {"agent_socket", options.agent_socket},
          {"timeout_seconds", options.timeout_seconds}};
}

absl::StatusOr<json> ChainPlugin(const json& config, const json& plugin, std::string_view file) {
  if (!config.is_object()) return absl::InvalidArgumentError(StrCat(file, ": not a JSON object"));
  json out;
  if (auto plugins = config.find("plugins"); plugins != config.end()) {
    if (!plugins->is_array() || plugins->empty()) {
      return absl::InvalidArgumentError(StrCat(file, ": plugins: not a non-empty list"));
    }
    out = config;
  } else {
    // A single-plugin configuration: the list form of the same network (libcni's
    // ConfListFromConf), its plugin first.
    auto type = config.find("type");
    if (type == config.end() || !type->is_string()) {
      return absl::InvalidArgumentError(StrCat(file, ": neither plugins nor type"));
    }
    json first = config;
    first.erase("cniVersion");
    first.erase("name");
    out = {{"cniVersion", config.value("cniVersion", "")},
           {"name", config.value("name", "")},
           {"plugins", json::array({first})}};
  }
  auto version = out.find("cniVersion");
  if (version == out.end() || !version->is_string() ||
      !cni::SupportedVersion(version->get<std::string>())) {
    return absl::FailedPreconditionError(
        StrCat(file, ": cniVersion ", version == out.end() ? "missing" : version->dump(),
               ": zmesh-cni speaks 0.3.0, 0.3.1, 0.4.0 and 1.0.0; not chaining it (pods in "
               "enrolled namespaces would fail to start)"));
  }
  json kept = json::array();
  for (const json& p : out["plugins"]) {
    if (!IsOurs(p)) kept.push_back(p);
  }
  if (kept.empty()) {
    return absl::InvalidArgumentError(StrCat(file, ": no plugin but zmesh-cni to chain after"));
  }
  kept.push_back(plugin);
  out["plugins"] = std::move(kept);
  return out;
}

json UnchainPlugin(const json& conflist) {
  json out = conflist;
  auto plugins = out.find("plugins");
  if (plugins == out.end() || !plugins->is_array()) return out;
  json kept = json::array();
  for (const json& p : *plugins) {
    if (!IsOurs(p)) kept.push_back(p);
  }
  *plugins = std::move(kept);
  return out;
}

absl::StatusOr<CniInstallResult> InstallCni(const CniInstallOptions& options) {
  CniInstallResult result;
  // 1. The binary (only when it differs: a rename under a runtime running the old one is safe,
  // but a needless one is noise).
  const std::string target = StrCat(options.bin_dir, "/", cni::kPluginType);
  ZM_ASSIGN_OR_RETURN(std::string binary, ReadFile(options.plugin_binary));
  auto installed = ReadFile(target);
  if (!installed.ok() || *installed != binary) {
    ZM_RETURN_IF_ERROR(WriteFileAtomically(target, binary, 0755));
    result.binary_written = true;
  }
  // 2. The configuration.
  ZM_ASSIGN_OR_RETURN(std::string primary, PrimaryNetworkConfig(options.conf_dir));
  ZM_ASSIGN_OR_RETURN(json config, ReadJsonFile(primary));
  ZM_ASSIGN_OR_RETURN(json chained, ChainPlugin(config, PluginEntry(options), primary));
  result.conf_file = primary;
  if (!config.contains("plugins") && !EndsWith(primary, ".conflist")) {
    // X.conf (or X.json) holding one plugin: X.conflist takes its place (it sorts right after
    // it, so until X.conf is gone the runtime keeps reading X.conf, never a half state).
    const std::string base = primary.substr(0, primary.rfind('.'));
    result.conf_file = base + ".conflist";
    ZM_RETURN_IF_ERROR(WriteFileAtomically(result.conf_file, Pretty(chained), 0644));
    if (::unlink(primary.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", primary);
    result.conf_written = true;
    L().info("CNI: {} rewritten as {} with zmesh-cni chained last", primary, result.conf_file);
  } else if (chained != config) {
    ZM_RETURN_IF_ERROR(WriteFileAtomically(primary, Pretty(chained), 0644));
    result.conf_written = true;
    L().info("CNI: zmesh-cni chained last in {}", primary);
  }
  return result;
}

absl::Status UninstallCni(const std::string& bin_dir, const std::string& conf_dir) {
  ZM_ASSIGN_OR_RETURN(std::set<std::string> names, NetworkConfigNames(conf_dir));
  for (const std::string& name : names) {
    const std::string path = StrCat(conf_dir, "/", name);
    auto config = ReadJsonFile(path);
    if (!config.ok()) {
      L().warn("CNI uninstall: skipping {}: {}", path, config.status().message());
      continue;
    }
    json unchained = UnchainPlugin(*config);
    if (unchained == *config) continue;
    ZM_RETURN_IF_ERROR(WriteFileAtomically(path, Pretty(unchained), 0644));
    L().info("CNI: zmesh-cni removed from {}", path);
  }
  const std::string binary = StrCat(bin_dir, "/", cni::kPluginType);
  if (::unlink(binary.c_str()) != 0 && errno != ENOENT) return ErrnoError("unlink", binary);
  return absl::OkStatus();
}

}  // namespace zm::agent

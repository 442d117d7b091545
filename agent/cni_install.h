#pragma once
// Installing zmesh-cni on the node (cluster mode, DESIGN §3): the plugin binary goes into the CNI
// binary directory and the plugin into the pod network's configuration as the last entry of its
// `plugins` list (chained), so the runtime runs it after the plugins that set the pod's interface
// up. Installed when the agent starts and again whenever the configuration directory changes
// (the pod network's own installer may rewrite its file); removed only by `zmesh-agent
// uninstall`: with the agent stopped, pod creation in enrolled namespaces must fail, not go on
// unprotected.
//
// Every write is atomic (a temporary file in the same directory, then rename), and nothing is
// written when nothing changes. Order: binary, then configuration on install; configuration,
// then binary on uninstall — the runtime never finds the plugin named but missing.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zm::agent {

struct CniInstallOptions {
  std::string bin_dir;        // the runtime's CNI_PATH directory (/opt/cni/bin)
  std::string conf_dir;       // the runtime's network configuration directory (/etc/cni/net.d)
  std::string plugin_binary;  // the zmesh-cni to copy there
  std::string agent_socket;   // written into the plugin's options
  int timeout_seconds = 30;   // the plugin's ADD deadline
};

// The pod network's configuration file: the first *.conf, *.conflist or *.json in `conf_dir` by
// name, as libcni (containerd, CRI-O) picks it. NotFound when there is none yet.
absl::StatusOr<std::string> PrimaryNetworkConfig(const std::string& conf_dir);

// `config` (a conflist, or a single-plugin configuration, which becomes a one-entry conflist)
// with `plugin` as its last entry; an earlier zmesh-cni entry is removed wherever it was. The
// other plugins and fields are kept as they are. Errors name `file`: a configuration that is not
// a JSON object, has no plugin type, or a cniVersion zmesh-cni does not speak.
absl::StatusOr<nlohmann::json> ChainPlugin(const nlohmann::json& config,
                                           const nlohmann::json& plugin, std::string_view file);
// `conflist` without zmesh-cni entries.
nlohmann::json UnchainPlugin(const nlohmann::json& conflist);
// The plugin's entry for `options`.
nlohmann::json PluginEntry(const CniInstallOptions& options);

struct CniInstallResult {
  std::string conf_file;  // the chained configuration
  bool binary_written = false;
  bool conf_written = false;
};

// Installs the binary and chains the plugin into the primary configuration (a single-plugin
// `X.conf` is rewritten as `X.conflist`). NotFound when the directory has no configuration yet.
absl::StatusOr<CniInstallResult> InstallCni(const CniInstallOptions& options);

// Removes zmesh-cni from every configuration in `conf_dir`, then the binary from `bin_dir`.
// Idempotent.
absl::Status UninstallCni(const std::string& bin_dir, const std::string& conf_dir);

}  // namespace zm::agent

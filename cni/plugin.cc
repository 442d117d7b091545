#include "cni/plugin.h"

#include <cstdlib>

#include "absl/strings/cord.h"
#include "common/base/strings.h"

namespace zm::cni {
namespace {

using nlohmann::json;

// How much longer than the agent's own deadline the plugin waits for its answer: the agent
// answers a timed-out ADD itself, with the reason, and that is the better error.
constexpr std::chrono::milliseconds kAnswerGrace{2000};
// DEL must not hang a pod's deletion on a stuck agent.
constexpr std::chrono::milliseconds kDelTimeout{10000};
constexpr std::string_view kFallbackVersion = "1.0.0";
constexpr char kCodeUrl[] = "zmesh.io/cni-error-code";

std::string Msg(const absl::Status& st) { return std::string(st.message()); }

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

absl::Status Coded(int code, std::string msg) {
  absl::Status st = absl::InvalidArgumentError(std::move(msg));
  st.SetPayload(kCodeUrl, absl::Cord(std::to_string(code)));
  return st;
}

int CodeOf(const absl::Status& st, int fallback) {
  auto payload = st.GetPayload(kCodeUrl);
  if (!payload) return fallback;
  return std::atoi(std::string(*payload).c_str());
}

// "0.4.0" >= "0.4.0": CHECK exists from 0.4.0 on.
bool AtLeast040(std::string_view version) { return version != "0.3.0" && version != "0.3.1"; }

Outcome Error(std::string_view version, int code, std::string_view msg,
              std::string_view details = "") {
  return {.exit_code = 1, .stdout_text = ErrorJson(version, code, msg, details) + "\n"};
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

Environment Environment::FromProcess() {
  return {.command = Getenv("CNI_COMMAND"),
          .container_id = Getenv("CNI_CONTAINERID"),
          .netns = Getenv("CNI_NETNS"),
          .ifname = Getenv("CNI_IFNAME"),
          .args = Getenv("CNI_ARGS"),
          .path = Getenv("CNI_PATH")};
}

std::string ErrorJson(std::string_view cni_version, int code, std::string_view msg,
                      std::string_view details) {
  json j = {{"cniVersion", cni_version.empty() ? kFallbackVersion : cni_version},
            {"code", code},
            {"msg", msg}};
  if (!details.empty()) j["details"] = details;
  return Dump(j);
}

absl::StatusOr<PodArgs> ParsePodArgs(std::string_view cni_args) {
  PodArgs out;
  while (!cni_args.empty()) {
    size_t end = cni_args.find(';');
    std::string_view pair = cni_args.substr(0, end);
    cni_args = end == std::string_view::npos ? std::string_view() : cni_args.substr(end + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return Coded(kInvalidEnvironment, StrCat("CNI_ARGS: \"", pair, "\" is not KEY=VALUE"));
    }
    std::string_view key = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (key == "K8S_POD_NAMESPACE") {
      out.pod_namespace = value;
    } else if (key == "K8S_POD_NAME") {
      out.pod_name = value;
    } else if (key == "K8S_POD_UID") {
      out.pod_uid = value;
    } else if (key == "K8S_POD_INFRA_CONTAINER_ID") {
      out.infra_container_id = value;
    }  // others (IgnoreUnknown, ...) are not ours
  }
  return out;
}

absl::StatusOr<NetConf> ParseNetConf(std::string_view stdin_text) {
  json j = json::parse(stdin_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Coded(kDecodingFailure, "the network configuration on stdin is not a JSON object");
  }
  NetConf c;
  auto str = [&](const char* key, std::string& out) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_string()) return Coded(kInvalidConfig, StrCat(key, ": not a string"));
    out = it->get<std::string>();
    return absl::OkStatus();
  };
  if (absl::Status st = str("cniVersion", c.cni_version); !st.ok()) return st;
  if (absl::Status st = str("name", c.name); !st.ok()) return st;
  if (absl::Status st = str("type", c.type); !st.ok()) return st;
  if (absl::Status st = str("agent_socket", c.agent_socket); !st.ok()) return st;
  if (auto it = j.find("timeout_seconds"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 3600) {
      return Coded(kInvalidConfig, "timeout_seconds: not a whole number of seconds in 1..3600");
    }
    c.timeout_seconds = it->get<int>();
  }
  if (auto it = j.find("prevResult"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Coded(kInvalidConfig, "prevResult: not an object");
    c.prev_result = *it;
  }
  return c;
}

absl::StatusOr<std::vector<std::string>> ResultAddresses(const json& result) {
  std::vector<std::string> out;
  auto ips = result.find("ips");
  if (ips == result.end() || ips->is_null()) return out;
  if (!ips->is_array()) return Coded(kInvalidConfig, "prevResult.ips: not a list");
  for (size_t i = 0; i < ips->size(); ++i) {
    const json& entry = (*ips)[i];
    auto address = entry.is_object() ? entry.find("address") : entry.end();
    if (address == entry.end() || !address->is_string()) {
      return Coded(kInvalidConfig, StrCat("prevResult.ips[", i, "].address: missing"));
    }
    std::string a = address->get<std::string>();
    out.push_back(a.substr(0, a.find('/')));
  }
  return out;
}

Outcome Execute(const Environment& env, std::string_view stdin_text, const AgentCall& agent) {
  if (env.command.empty()) return Error("", kInvalidEnvironment, "CNI_COMMAND is not set");
  absl::StatusOr<NetConf> conf = ParseNetConf(stdin_text);
  if (!conf.ok()) return Error("", CodeOf(conf.status(), kInvalidConfig), Msg(conf.status()));
  const std::string& version = conf->cni_version;
  if (env.command == "VERSION") {
    json versions = json::array();
    for (std::string_view v : kSupportedVersions) versions.push_back(v);
    return {.stdout_text =
                Dump({{"cniVersion",
                       SupportedVersion(version) ? std::string_view(version) : kFallbackVersion},
                      {"supportedVersions", versions}}) +
                "\n"};
  }
  if (!SupportedVersion(version)) {
    return Error(kFallbackVersion, kIncompatibleVersion,
                 StrCat("zmesh-cni does not speak cniVersion \"", version, "\""),
                 "supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0");
  }
  Command command;
  if (env.command == "ADD") {
    command = Command::kAdd;
  } else if (env.command == "DEL") {
    command = Command::kDel;
  } else if (env.command == "CHECK") {
    command = Command::kCheck;
    if (!AtLeast040(version)) {
      return Error(version, kIncompatibleVersion, "CHECK needs cniVersion 0.4.0 or later");
    }
  } else {
    return Error(version, kInvalidEnvironment, StrCat("unknown CNI_COMMAND \"", env.command, "\""));
  }
  if (env.container_id.empty()) {
    return Error(version, kInvalidEnvironment, "CNI_CONTAINERID is not set");
  }
  if (command != Command::kDel && (env.netns.empty() || env.ifname.empty())) {
    return Error(version, kInvalidEnvironment, "CNI_NETNS and CNI_IFNAME must be set");
  }
  if (command != Command::kDel && !conf->prev_result) {
    return Error(version, kInvalidConfig,
                 "zmesh-cni is a chained plugin: it needs prevResult (put it after the plugins "
                 "that set the pod's interface up)");
  }
  if (conf->agent_socket.empty()) {
    return Error(version, kInvalidConfig, "agent_socket: missing from the plugin's configuration");
  }
  absl::StatusOr<PodArgs> args = ParsePodArgs(env.args);
  if (!args.ok())
    return Error(version, CodeOf(args.status(), kInvalidEnvironment), Msg(args.status()));

  // The previous result goes through unchanged (only a missing cniVersion is filled in).
  std::string passthrough;
  if (command == Command::kAdd) {
    json result = *conf->prev_result;
    if (!result.contains("cniVersion")) result["cniVersion"] = version;
    passthrough = Dump(result) + "\n";
  }
  if (args->pod_namespace.empty() || args->pod_name.empty()) {
    // Not a Kubernetes pod: nothing to enroll.
    return {.stdout_text = passthrough};
  }

  PodRequest request{.command = command,
                     .container_id = env.container_id,
                     .netns = env.netns,
                     .ifname = env.ifname,
                     .pod_namespace = args->pod_namespace,
                     .pod_name = args->pod_name,
                     .pod_uid = args->pod_uid,
                     .timeout_ms = conf->timeout_seconds * 1000LL};
  if (command != Command::kDel) {
    absl::StatusOr<std::vector<std::string>> ips = ResultAddresses(*conf->prev_result);
    if (!ips.ok()) return Error(version, CodeOf(ips.status(), kInvalidConfig), Msg(ips.status()));
    request.ips = std::move(*ips);
  }
  const std::string pod = request.key();
  std::chrono::milliseconds wait = std::chrono::seconds(conf->timeout_seconds) + kAnswerGrace;
  if (command == Command::kDel) wait = std::min(wait, kDelTimeout);
  absl::StatusOr<PodReply> reply = agent(conf->agent_socket, request, wait);

  if (command == Command::kDel) {
    // A pod must stay deletable: report, but succeed.
    if (!reply.ok()) {
      return {.stderr_text = StrCat("zmesh-cni: DEL ", pod, ": ", Msg(reply.status()),
                                    " (the agent cleans up when it is back)\n")};
    }
    if (!reply->ok) {
      return {.stderr_text = StrCat("zmesh-cni: DEL ", pod, ": ", reply->error, "\n")};
    }
    return {};
  }
  if (!reply.ok()) {
    return Error(version, kTryAgainLater,
                 StrCat(command == Command::kAdd ? "cannot enroll pod " : "cannot check pod ", pod,
                        " in the zmesh mesh"),
                 Msg(reply.status()));
  }
  if (!reply->ok) {
    return Error(version, reply->retry ? kTryAgainLater : kPodRefused,
                 StrCat(command == Command::kAdd ? "pod " : "check of pod ", pod,
                        command == Command::kAdd ? " not enrolled in the zmesh mesh" : " failed"),
                 reply->error);
  }
  return {.stdout_text = passthrough};
}

}  // namespace zm::cni

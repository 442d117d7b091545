#include "common/cni/protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/base/unix_socket.h"

namespace zm::cni {
namespace {

using nlohmann::json;

std::string Line(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

absl::StatusOr<json> ParseObjectLine(std::string_view line, std::string_view what) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(StrCat(what, ": not a JSON object"));
  }
  return j;
}

// `j[key]` as a string: absent is empty, another type an error.
absl::Status GetString(const json& j, const char* key, std::string& out, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string())
    return absl::InvalidArgumentError(StrCat(what, ": ", key, ": not a string"));
  out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetBool(const json& j, const char* key, bool& out, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean())
    return absl::InvalidArgumentError(StrCat(what, ": ", key, ": not a boolean"));
  out = it->get<bool>();
  return absl::OkStatus();
}

}  // namespace

bool SupportedVersion(std::string_view cni_version) {
  for (std::string_view v : kSupportedVersions) {
    if (v == cni_version) return true;
  }
  return false;
}

std::string_view CommandName(Command command) {
  switch (command) {
    case Command::kAdd:
      return "add";
    case Command::kDel:
      return "del";
    case Command::kCheck:
      return "check";
  }
  return "unknown";
}

std::string EncodeRequest(const PodRequest& r) {
  return Line({{"cmd", CommandName(r.command)},
               {"container_id", r.container_id},
               {"netns", r.netns},
               {"ifname", r.ifname},
               {"namespace", r.pod_namespace},
               {"name", r.pod_name},
               {"uid", r.pod_uid},
               {"ips", r.ips},
               {"timeout_ms", r.timeout_ms}});
}

absl::StatusOr<PodRequest> DecodeRequest(std::string_view line) {
  constexpr std::string_view kWhat = "CNI request";
  ZM_ASSIGN_OR_RETURN(json j, ParseObjectLine(line, kWhat));
  PodRequest r;
  std::string cmd;
  ZM_RETURN_IF_ERROR(GetString(j, "cmd", cmd, kWhat));
  if (cmd == "add") {
    r.command = Command::kAdd;
  } else if (cmd == "del") {
    r.command = Command::kDel;
  } else if (cmd == "check") {
    r.command = Command::kCheck;
  } else {
    return absl::InvalidArgumentError(StrCat(kWhat, ": cmd: unknown command \"", cmd, "\""));
  }
  ZM_RETURN_IF_ERROR(GetString(j, "container_id", r.container_id, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "netns", r.netns, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "ifname", r.ifname, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "namespace", r.pod_namespace, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "name", r.pod_name, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "uid", r.pod_uid, kWhat));
  if (r.pod_namespace.empty() || r.pod_name.empty()) {
    return absl::InvalidArgumentError(StrCat(kWhat, ": namespace and name are required"));
  }
  if (auto it = j.find("ips"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return absl::InvalidArgumentError(StrCat(kWhat, ": ips: not a list"));
    for (const json& ip : *it) {
      if (!ip.is_string()) return absl::InvalidArgumentError(StrCat(kWhat, ": ips: not a string"));
      r.ips.push_back(ip.get<std::string>());
    }
  }
  if (auto it = j.find("timeout_ms"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return absl::InvalidArgumentError(StrCat(kWhat, ": timeout_ms: not a count of ms"));
    }
    r.timeout_ms = it->get<int64_t>();
  }
  return r;
}

std::string EncodeReply(const PodReply& r) {
  json j = {{"ok", r.ok}};
  if (r.ok) {
    j["state"] = r.state;
  } else {
    j["error"] = r.error;
    j["retry"] = r.retry;
  }
  return Line(j);
}

absl::StatusOr<PodReply> DecodeReply(std::string_view line) {
  constexpr std::string_view kWhat = "agent's answer";
  ZM_ASSIGN_OR_RETURN(json j, ParseObjectLine(line, kWhat));
  PodReply r;
  if (!j.contains("ok")) return absl::InvalidArgumentError(StrCat(kWhat, ": ok: missing"));
  ZM_RETURN_IF_ERROR(GetBool(j, "ok", r.ok, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "state", r.state, kWhat));
  ZM_RETURN_IF_ERROR(GetString(j, "error", r.error, kWhat));
  ZM_RETURN_IF_ERROR(GetBool(j, "retry", r.retry, kWhat));
  return r;
}

absl::StatusOr<std::string> ReadLine(int fd, std::chrono::steady_clock::time_point deadline,
                                     std::string_view what) {
  std::string line;
  char buf[4096];
  while (true) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError(StrCat("no answer from ", what, " in time"));
    }
    pollfd p{.fd = fd, .events = POLLIN};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("poll", what);
    if (n == 0) continue;  // the deadline check above ends it
    ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
    if (got < 0 && errno == EINTR) continue;
    // A peer that closes with our request unread resets the connection: the same as a close.
    if (got < 0 && errno != ECONNRESET) return ErrnoError("recv", what);
    if (got <= 0) {
      return absl::UnavailableError(StrCat(what, " closed the connection without an answer"));
    }
    line.append(buf, static_cast<size_t>(got));
    if (size_t nl = line.find('\n'); nl != std::string::npos) {
      line.resize(nl);
      return line;
    }
    if (line.size() > kMaxLineBytes) {
      return absl::InvalidArgumentError(
          StrCat(what, ": a line longer than ", kMaxLineBytes, " bytes"));
    }
  }
}

absl::Status WriteAll(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("send", what);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<PodReply> CallAgent(const std::string& socket_path, const PodRequest& request,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto conn = ConnectUnix(socket_path, SOCK_STREAM);
  if (!conn.ok()) {
    return absl::UnavailableError(
        StrCat("cannot reach the zmesh agent: ", conn.status().message()));
  }
  const std::string what = StrCat("the zmesh agent at ", socket_path);
  if (absl::Status st = WriteAll(conn->get(), EncodeRequest(request), what); !st.ok()) {
    return absl::UnavailableError(st.message());
  }
  ZM_ASSIGN_OR_RETURN(std::string line, ReadLine(conn->get(), deadline, what));
  return DecodeReply(line);
}

}  // namespace zm::cni

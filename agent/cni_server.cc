#include "agent/cni_server.h"

#include <sys/socket.h>

#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "common/base/unix_socket.h"

namespace zm::agent {
namespace {

spdlog::logger& L() {
  static spdlog::logger& l = Log("cni");
  return l;
}

void Answer(int fd, const cni::PodReply& reply) {
  absl::Status st = cni::WriteAll(fd, cni::EncodeReply(reply), "the CNI plugin");
  if (!st.ok()) L().warn("CNI answer not delivered: {}", st.message());
}

}  // namespace

absl::StatusOr<std::unique_ptr<CniServer>> CniServer::Listen(const std::string& path) {
  ZM_ASSIGN_OR_RETURN(auto listener, UnixListener::Listen(path, SOCK_STREAM, 0600, "CNI"));
  return std::unique_ptr<CniServer>(new CniServer(std::move(listener)));
}

absl::Status CniServer::Serve(const Handler& handler) {
  while (true) {
    absl::StatusOr<Fd> conn = listener_->Accept();
    if (absl::IsCancelled(conn.status())) return absl::OkStatus();
    if (!conn.ok()) return conn.status();
    HandleConnection(*std::move(conn), handler);
  }
}

void CniServer::HandleConnection(Fd conn, const Handler& handler) {
  auto line = cni::ReadLine(conn.get(), std::chrono::steady_clock::now() + read_timeout_,
                            "a CNI plugin connection");
  if (!line.ok()) {
    L().warn("CNI request not read: {}", line.status().message());
    return;
  }
  auto request = cni::DecodeRequest(*line);
  if (!request.ok()) {
    L().warn("CNI request refused: {}", request.status().message());
    Answer(conn.get(), {.ok = false, .error = std::string(request.status().message())});
    return;
  }
  L().debug("CNI {} {} container {}", cni::CommandName(request->command), request->key(),
            request->container_id);
  auto shared = std::make_shared<Fd>(std::move(conn));
  handler(*std::move(request),
          [shared](const cni::PodReply& reply) { Answer(shared->get(), reply); });
}

}  // namespace zm::agent

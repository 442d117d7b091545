#pragma once
// ZDS framing and messages (DESIGN §5): one protobuf message per SOCK_SEQPACKET datagram,
// file descriptors as SCM_RIGHTS. Wire-compatible with Istio's istio.workload.zds; see
// proto/zmesh/zds/v1/zds.proto for the one zmesh extension (listener fd on the Ack).
//
// Everything here validates untrusted bytes: a truncated or garbage datagram, an Add
// without its netns fd, or fds where none belong is an error naming what was wrong, and
// every received fd is closed unless it is handed to the caller.

#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/fd.h"

namespace zm::zds {

// Largest datagram either side sends or accepts.
inline constexpr size_t kMaxDatagram = 64 * 1024;
// Most fds one datagram may carry.
inline constexpr size_t kMaxFds = 4;

struct Datagram {
  std::string bytes;
  std::vector<Fd> fds;
};

// Sends one datagram with `fds` attached. Retries EINTR.
absl::Status SendDatagram(int sock, std::string_view bytes, const std::vector<int>& fds = {});
// Receives one datagram. Peer closed: absl::UnavailableError("peer closed the ZDS
// connection"). Truncated payload or control data: InvalidArgument (fds closed).
absl::StatusOr<Datagram> RecvDatagram(int sock);

// --- Messages, as plain structs (generated types stop at this boundary) ---
struct Hello {
  int version = 1;
};
struct AddWorkload {
  std::string uid;
  std::string name;
  std::string ns;
  std::string service_account;
  Fd netns;  // always valid after a successful decode
};
struct KeepWorkload {
  std::string uid;
};
struct DelWorkload {
  std::string uid;
};
struct SnapshotSent {};
using Request = std::variant<AddWorkload, KeepWorkload, DelWorkload, SnapshotSent>;

struct Ack {
  std::string error;       // empty = success
  std::vector<Fd> listeners;  // zmesh extension: for an Add, ztunnel's inbound listener
};

std::string EncodeHello(const Hello& hello);
absl::StatusOr<Hello> DecodeHello(Datagram d);

// Encodes a request; the caller sends the Add's netns fd alongside (SendRequest does both).
std::string EncodeRequest(const Request& req);
absl::StatusOr<Request> DecodeRequest(Datagram d);
absl::Status SendRequest(int sock, const Request& req);

std::string EncodeAck(std::string_view error);
absl::StatusOr<Ack> DecodeAck(Datagram d);
absl::Status SendAck(int sock, std::string_view error, const std::vector<int>& listener_fds = {});

// "add(uid)", "del(uid)", ... for logs.
std::string Describe(const Request& req);

}  // namespace zm::zds

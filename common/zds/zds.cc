#include "common/zds/zds.h"

#include <sys/socket.h>

#include <cstring>

#include "common/base/strings.h"
#include "common/base/status.h"
#include "zmesh/zds/v1/zds.pb.h"

namespace zm::zds {
namespace pb = ::zmesh::zds::v1;

absl::Status SendDatagram(int sock, std::string_view bytes, const std::vector<int>& fds) {
  if (bytes.size() > kMaxDatagram) {
    return absl::InvalidArgumentError(StrCat("ZDS message of ", bytes.size(),
                                                   " bytes exceeds ", kMaxDatagram));
  }
  if (fds.size() > kMaxFds) return absl::InvalidArgumentError("too many fds for one ZDS message");
  iovec iov{.iov_base = const_cast<char*>(bytes.data()), .iov_len = bytes.size()};
  // A datagram needs at least one byte; an empty protobuf (SnapshotSent) is not empty on
  // the wire because the oneof tag is always present, but guard anyway.
  char zero = 0;
  if (bytes.empty()) iov = {.iov_base = &zero, .iov_len = 0};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("sendmsg", "ZDS socket");
  return absl::OkStatus();
}

absl::StatusOr<Datagram> RecvDatagram(int sock) {
  Datagram d;
  d.bytes.resize(kMaxDatagram);
  iovec iov{.iov_base = d.bytes.data(), .iov_len = d.bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("recvmsg", "ZDS socket");
  // Take ownership of every fd first, so nothing leaks whatever is wrong below.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      d.fds.emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return absl::InvalidArgumentError(
        StrCat("ZDS message carried more than ", kMaxFds, " fds (control data truncated)"));
  }
  if (msg.msg_flags & MSG_TRUNC) {
    return absl::InvalidArgumentError(
        StrCat("ZDS message larger than ", kMaxDatagram, " bytes (truncated)"));
  }
  if (n == 0 && d.fds.empty()) return absl::UnavailableError("peer closed the ZDS connection");
  d.bytes.resize(static_cast<size_t>(n));
  return d;
}

namespace {

absl::Status NoFds(const Datagram& d, std::string_view what) {
  if (!d.fds.empty()) {
    return absl::InvalidArgumentError(
        StrCat("ZDS ", what, " must carry no fds, got ", d.fds.size()));
  }
  return absl::OkStatus();
}

template <typename Msg>
absl::Status Parse(const Datagram& d, Msg* msg, std::string_view what) {
  if (d.bytes.empty()) return absl::InvalidArgumentError(StrCat("empty ZDS ", what));
  if (!msg->ParseFromString(d.bytes)) {
    return absl::InvalidArgumentError(
        StrCat("malformed ZDS ", what, " (", d.bytes.size(), " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status NeedUid(const std::string& uid, std::string_view what) {
  if (uid.empty()) return absl::InvalidArgumentError(StrCat("ZDS ", what, " without uid"));
  return absl::OkStatus();
}

}  // namespace

std::string EncodeHello(const Hello& hello) {
  pb::ZdsHello m;
  m.set_version(static_cast<pb::Version>(hello.version));
  return m.SerializeAsString();
}

absl::StatusOr<Hello> DecodeHello(Datagram d) {
  ZM_RETURN_IF_ERROR(NoFds(d, "hello"));
  pb::ZdsHello m;
  // An all-default hello (version NOT_USED) serializes to zero bytes: accept it, refuse it
  // below by version.
  if (!d.bytes.empty() && !m.ParseFromString(d.bytes)) {
    return absl::InvalidArgumentError("malformed ZDS hello");
  }
  if (m.version() != pb::V1) {
    return absl::InvalidArgumentError(
        StrCat("unsupported ZDS version ", static_cast<int>(m.version()), " (want 1)"));
  }
  return Hello{.version = 1};
}

std::string EncodeRequest(const Request& req) {
  pb::WorkloadRequest m;
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, AddWorkload>) {
          auto* add = m.mutable_add();
          add->set_uid(r.uid);
          add->mutable_workload_info()->set_name(r.name);
          add->mutable_workload_info()->set_namespace_(r.ns);
          add->mutable_workload_info()->set_service_account(r.service_account);
        } else if constexpr (std::is_same_v<T, KeepWorkload>) {
          m.mutable_keep()->set_uid(r.uid);
        } else if constexpr (std::is_same_v<T, DelWorkload>) {
          m.mutable_del()->set_uid(r.uid);
        } else {
          m.mutable_snapshot_sent();
        }
      },
      req);
  return m.SerializeAsString();
}

absl::StatusOr<Request> DecodeRequest(Datagram d) {
  pb::WorkloadRequest m;
  ZM_RETURN_IF_ERROR(Parse(d, &m, "workload request"));
  switch (m.payload_case()) {
    case pb::WorkloadRequest::kAdd: {
      ZM_RETURN_IF_ERROR(NeedUid(m.add().uid(), "add"));
      if (d.fds.size() != 1) {
        return absl::InvalidArgumentError(StrCat("ZDS add(", m.add().uid(),
                                                       ") must carry exactly one netns fd, got ",
                                                       d.fds.size()));
      }
      AddWorkload add;
      add.uid = m.add().uid();
      add.name = m.add().workload_info().name();
      add.ns = m.add().workload_info().namespace_();
      add.service_account = m.add().workload_info().service_account();
      add.netns = std::move(d.fds[0]);
      return Request(std::move(add));
    }
    case pb::WorkloadRequest::kKeep:
      ZM_RETURN_IF_ERROR(NoFds(d, "keep"));
      ZM_RETURN_IF_ERROR(NeedUid(m.keep().uid(), "keep"));
      return Request(KeepWorkload{.uid = m.keep().uid()});
    case pb::WorkloadRequest::kDel:
      ZM_RETURN_IF_ERROR(NoFds(d, "del"));
      ZM_RETURN_IF_ERROR(NeedUid(m.del().uid(), "del"));
      return Request(DelWorkload{.uid = m.del().uid()});
    case pb::WorkloadRequest::kSnapshotSent:
      ZM_RETURN_IF_ERROR(NoFds(d, "snapshot-sent"));
      return Request(SnapshotSent{});
    case pb::WorkloadRequest::PAYLOAD_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("ZDS workload request with no payload");
}

absl::Status SendRequest(int sock, const Request& req) {
  std::vector<int> fds;
  if (const auto* add = std::get_if<AddWorkload>(&req)) fds.push_back(add->netns.get());
  return SendDatagram(sock, EncodeRequest(req), fds);
}

std::string EncodeAck(std::string_view error) {
  pb::WorkloadResponse m;
  m.mutable_ack()->set_error(std::string(error));
  return m.SerializeAsString();
}

absl::StatusOr<Ack> DecodeAck(Datagram d) {
  pb::WorkloadResponse m;
  ZM_RETURN_IF_ERROR(Parse(d, &m, "ack"));
  if (m.payload_case() != pb::WorkloadResponse::kAck) {
    return absl::InvalidArgumentError("ZDS response is not an ack");
  }
  Ack ack;
  ack.error = m.ack().error();
  ack.listeners = std::move(d.fds);
  return ack;
}

absl::Status SendAck(int sock, std::string_view error, const std::vector<int>& listener_fds) {
  return SendDatagram(sock, EncodeAck(error), listener_fds);
}

std::string Describe(const Request& req) {
  return std::visit(
      [](const auto& r) -> std::string {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, AddWorkload>) {
          return StrCat("add(", r.uid, " ", r.ns, "/", r.name, ")");
        } else if constexpr (std::is_same_v<T, KeepWorkload>) {
          return StrCat("keep(", r.uid, ")");
        } else if constexpr (std::is_same_v<T, DelWorkload>) {
          return StrCat("del(", r.uid, ")");
        } else {
          return "snapshot-sent";
        }
      },
      req);
}

}  // namespace zm::zds

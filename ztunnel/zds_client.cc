#include "ztunnel/zds_client.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cstring>

#include "common/base/fd.h"
#include "common/base/log.h"
#include "common/base/status.h"
#include "common/base/strings.h"
#include "zmesh/zds/v1/zds.pb.h"

namespace zm::ztunnel {
namespace {

absl::StatusOr<Fd> ConnectUnix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    return absl::InvalidArgumentError(StrCat("ZDS socket path too long: ", path));
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  // Non-blocking connect: a full backlog must not stall the control thread.
  Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoError("socket", "ZDS");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return ErrnoError("connect", path);
  }
  // Back to blocking for sendmsg/recvmsg: reads happen only after readiness, and a send
  // waits at most 5 s for an agent that does not read.
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return ErrnoError("fcntl", path);
  }
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoError("setsockopt(SO_SNDTIMEO)", path);
  }
  return fd;
}

// Whether the bytes name a request (a WorkloadRequest with a payload) although the request
// is invalid, e.g. an Add without its netns fd: such a request gets an error Ack.
bool NamesRequest(const std::string& bytes) {
  ::zmesh::zds::v1::WorkloadRequest m;
  return !bytes.empty() && m.ParseFromString(bytes) &&
         m.payload_case() != ::zmesh::zds::v1::WorkloadRequest::PAYLOAD_NOT_SET;
}

}  // namespace

ZdsClient::ZdsClient(asio::io_context& ctx, ZdsClientOptions opts, WorkloadHandler& handler)
    : opts_(std::move(opts)),
      handler_(handler),
      sock_(ctx),
      timer_(ctx),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds ZdsClient::Backoff(const ZdsClientOptions& opts, int attempt,
                                             std::mt19937_64& rng) {
  int64_t d = opts.backoff_initial.count();
  for (int i = 0; i < attempt && d < opts.backoff_max.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, opts.backoff_max.count());
  std::uniform_int_distribution<int64_t> dist(d / 2, d);
  return std::chrono::milliseconds(dist(rng));
}

void ZdsClient::Start() {
  stopped_ = false;
  Connect();
}

void ZdsClient::Stop() {
  stopped_ = true;
  timer_.cancel();
  asio::error_code ignored;
  sock_.close(ignored);
}

void ZdsClient::Connect() {
  if (stopped_) return;
  auto fd = ConnectUnix(opts_.socket_path);
  absl::Status st = fd.status();
  if (st.ok()) {
    st = zds::SendDatagram(fd->get(), zds::EncodeHello({.version = 1}));
  }
  if (!st.ok()) {
    // Quiet while the agent is not there yet; loud once it has been retried a while.
    if (attempt_ < 5) {
      Log("zds").debug("connecting to the agent: {}", st.message());
    } else {
      Log("zds").warn("connecting to the agent: {}", st.message());
    }
    Disconnect(/*retry=*/true);
    return;
  }
  asio::error_code ec;
  sock_.assign(asio::generic::seq_packet_protocol(AF_UNIX, 0), fd->get(), ec);
  if (ec) {
    Log("zds").error("assign ZDS socket: {}", ec.message());
    Disconnect(/*retry=*/true);
    return;
  }
  (void)fd->release();
  good_session_ = false;
  sessions_.fetch_add(1);
  Log("zds").info("connected to the agent at {}, sent Hello", opts_.socket_path);
  handler_.OnSessionStart();
  WaitReadable();
}

void ZdsClient::Disconnect(bool retry) {
  asio::error_code ignored;
  sock_.close(ignored);
  if (good_session_) attempt_ = 0;
  good_session_ = false;
  if (!retry || stopped_) return;
  auto delay = Backoff(opts_, attempt_, rng_);
  if (attempt_ < 30) ++attempt_;
  timer_.expires_after(delay);
  timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) Connect();
  });
}

void ZdsClient::WaitReadable() {
  sock_.async_wait(asio::socket_base::wait_read, [this](const asio::error_code& ec) {
    if (ec == asio::error::operation_aborted || stopped_) return;
    if (ec) {
      Log("zds").warn("waiting on the ZDS socket: {}", ec.message());
      Disconnect(/*retry=*/true);
      return;
    }
    OnReadable();
  });
}

void ZdsClient::OnReadable() {
  const int fd = sock_.native_handle();
  auto dgram = zds::RecvDatagram(fd);
  if (!dgram.ok()) {
    if (absl::IsUnavailable(dgram.status())) {
      Log("zds").info("agent closed the ZDS connection; reconnecting");
    } else {
      Log("zds").warn("bad datagram from the agent, dropping the connection: {}",
                      dgram.status().message());
    }
    Disconnect(/*retry=*/true);
    return;
  }
  std::string bytes = dgram->bytes;
  auto req = zds::DecodeRequest(std::move(*dgram));
  absl::Status sent;
  if (!req.ok()) {
    if (!NamesRequest(bytes)) {
      Log("zds").warn("garbage from the agent ({} bytes), dropping the connection: {}",
                      bytes.size(), req.status().message());
      Disconnect(/*retry=*/true);
      return;
    }
    Log("zds").warn("invalid request from the agent: {}", req.status().message());
    sent = zds::SendAck(fd, StrCat("invalid request: ", req.status().message()));
  } else {
    const std::string what = zds::Describe(*req);
    zds::Ack ack = handler_.Handle(std::move(*req));
    std::vector<int> fds;
    for (const Fd& l : ack.listeners) fds.push_back(l.get());
    if (ack.error.empty()) {
      Log("zds").info("{}: ok", what);
    } else {
      Log("zds").warn("{}: {}", what, ack.error);
    }
    sent = zds::SendAck(fd, ack.error, fds);
    good_session_ = true;
  }
  if (!sent.ok()) {
    Log("zds").warn("sending the Ack: {}; reconnecting", sent.message());
    Disconnect(/*retry=*/true);
    return;
  }
  WaitReadable();
}

}  // namespace zm::ztunnel

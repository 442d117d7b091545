#include "agent/inpod_routing.h"

#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "common/base/fd.h"
#include "common/base/log.h"
#include "common/base/netns.h"
#include "common/base/status.h"
#include "common/base/strings.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

namespace zm::agent {
namespace {

constexpr char kFwmarkAcceptSysctl[] = "/proc/sys/net/ipv4/tcp_fwmark_accept";
// Replies the kernel makes without a socket (the RST of a closed app port to ztunnel's
// transparent SYN) must carry the SYN's delivery mark, or they leave the pod towards the real
// client instead of going back to ztunnel (which would then wait for its connect timeout).
constexpr char kFwmarkReflect4Sysctl[] = "/proc/sys/net/ipv4/fwmark_reflect";
constexpr char kFwmarkReflect6Sysctl[] = "/proc/sys/net/ipv6/fwmark_reflect";
// When one of two ztunnels listening on the same port (SO_REUSEPORT, a surge upgrade) closes
// its listener, the connections queued on it move to the other instead of being reset.
// Linux 5.14+; older kernels lack the file and reset them.
constexpr char kTcpMigrateReqSysctl[] = "/proc/sys/net/ipv4/tcp_migrate_req";

// ---- A minimal rtnetlink client -------------------------------------------------------

// One request: header, family header, attributes, each 4-byte aligned.
class NlRequest {
 public:
  NlRequest(uint16_t type, uint16_t flags) : buf_(NLMSG_HDRLEN, 0) {
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = NLM_F_REQUEST | flags;
  }
  template <typename T>
  void Put(const T& family_header) {
    Append(&family_header, sizeof(T));
  }
  void AttrU32(uint16_t type, uint32_t value) {
    rtattr a{.rta_len = static_cast<unsigned short>(RTA_LENGTH(sizeof(value))), .rta_type = type};
    Append(&a, sizeof(a));
    Append(&value, sizeof(value));
  }
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  const char* data() const { return buf_.data(); }
  size_t size() const { return buf_.size(); }

 private:
  void Append(const void* p, size_t n) {
    size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(n), 0);
    std::memcpy(buf_.data() + at, p, n);
    hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
  }
  std::vector<char> buf_;
};

std::string ErrName(int err) {
  const char* name = strerrorname_np(err);
  return StrCat(name ? name : "E?", " (", std::strerror(err), ")");
}

class Rtnl {
 public:
  static absl::StatusOr<Rtnl> Open() {
    Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!fd) return ErrnoError("socket", "AF_NETLINK/NETLINK_ROUTE");
    sockaddr_nl local{.nl_family = AF_NETLINK};
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      return ErrnoError("bind", "AF_NETLINK/NETLINK_ROUTE");
    }
    // The kernel's reason text in error acks ("Nexthop device is not up"); best effort.
    int one = 1;
    (void)::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
    return Rtnl(std::move(fd));
  }

  // Sends `req` with NLM_F_ACK and waits for its ack. Returns the request's errno (0 on
  // success) so the caller decides which ones are benign; transport failures are a Status.
  absl::StatusOr<int> Call(NlRequest& req, std::string_view what, std::string* ext_msg) {
    req.hdr()->nlmsg_flags |= NLM_F_ACK;
    ZM_RETURN_IF_ERROR(Send(req, what));
    int result = -1;
    ZM_RETURN_IF_ERROR(Receive(what, [&](const nlmsghdr* h) {
      if (h->nlmsg_type != NLMSG_ERROR) return false;
      result = ParseError(h, ext_msg);
      return true;
    }));
    return result;
  }

  // Sends a dump request and calls `fn` for every message until NLMSG_DONE.
  absl::Status Dump(NlRequest& req, std::string_view what,
                    const std::function<void(const nlmsghdr*)>& fn) {
    req.hdr()->nlmsg_flags |= NLM_F_DUMP;
    ZM_RETURN_IF_ERROR(Send(req, what));
    int err = 0;
    ZM_RETURN_IF_ERROR(Receive(what, [&](const nlmsghdr* h) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) {
        err = ParseError(h, nullptr);
        return true;
      }
      fn(h);
      return false;
    }));
    if (err != 0) return absl::InternalError(StrCat(what, ": ", ErrName(err)));
    return absl::OkStatus();
  }

 private:
  explicit Rtnl(Fd fd) : fd_(std::move(fd)) {}

  absl::Status Send(NlRequest& req, std::string_view what) {
    req.hdr()->nlmsg_seq = ++seq_;
    sockaddr_nl kernel{.nl_family = AF_NETLINK};
    ssize_t n;
    do {
      n = ::sendto(fd_.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                   sizeof(kernel));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoError("sendto", what);
    if (static_cast<size_t>(n) != req.size()) {
      return absl::InternalError(StrCat("sendto(", what, "): short write"));
    }
    return absl::OkStatus();
  }

  // Reads replies to the current sequence number until `fn` returns true.
  absl::Status Receive(std::string_view what, const std::function<bool(const nlmsghdr*)>& fn) {
    std::vector<char> buf(64 * 1024);
    while (true) {
      iovec iov{.iov_base = buf.data(), .iov_len = buf.size()};
      sockaddr_nl from{};
      msghdr msg{.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};
      ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("recvmsg", what);
      if (msg.msg_flags & MSG_TRUNC) {
        return absl::InternalError(StrCat("recvmsg(", what, "): reply truncated"));
      }
      if (from.nl_pid != 0) continue;  // not from the kernel
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(h, len);
           h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != seq_) continue;  // a late reply to an earlier request
        if (fn(h)) return absl::OkStatus();
      }
    }
  }

  // The errno of an NLMSG_ERROR (0 for a plain ack) and the kernel's extended message.
  static int ParseError(const nlmsghdr* h, std::string* ext_msg) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return EBADMSG;
    const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
    if (ext_msg != nullptr && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
      size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
      if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
      const char* base = reinterpret_cast<const char*>(h);
      while (off + NLA_HDRLEN <= h->nlmsg_len) {
        const auto* a = reinterpret_cast<const nlattr*>(base + off);
        if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len) break;
        if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
          ext_msg->assign(base + off + NLA_HDRLEN, strnlen(base + off + NLA_HDRLEN,
                                                           a->nla_len - NLA_HDRLEN));
        }
        off += NLA_ALIGN(a->nla_len);
      }
    }
    return -e->error;
  }

  Fd fd_;
  uint32_t seq_ = 0;
};

// Calls `fn` for each attribute after a family header of `header_len` bytes.
void ForEachAttr(const nlmsghdr* h, size_t header_len,
                 const std::function<void(const rtattr*)>& fn) {
  int len = static_cast<int>(h->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(header_len));
  auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(NLMSG_DATA(h)) +
                                            NLMSG_ALIGN(header_len));
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) fn(a);
}

uint32_t AttrU32(const rtattr* a) {
  uint32_t v = 0;
  if (RTA_PAYLOAD(a) >= sizeof(v)) std::memcpy(&v, RTA_DATA(a), sizeof(v));
  return v;
}

// ---- The three entries ----------------------------------------------------------------

const char* FamilyName(int family) { return family == AF_INET ? "inet" : "inet6"; }

std::string RuleText(int family) {
  return fmt::format("{} pref {} fwmark {:#x}/{:#x} lookup {}", FamilyName(family),
                     kDeliveryRulePriority, kDeliveryMark, kDeliveryMarkMask, kDeliveryRouteTable);
}

std::string RouteText(int family) {
  return fmt::format("{} local {} dev lo table {}", FamilyName(family),
                     family == AF_INET ? "0.0.0.0/0" : "::/0", kDeliveryRouteTable);
}

NlRequest RuleRequest(uint16_t type, uint16_t flags, int family) {
  NlRequest req(type, flags);
  fib_rule_hdr frh{};
  frh.family = static_cast<uint8_t>(family);
  frh.table = RT_TABLE_UNSPEC;  // > 255: carried by FRA_TABLE
  frh.action = FR_ACT_TO_TBL;
  req.Put(frh);
  req.AttrU32(FRA_PRIORITY, kDeliveryRulePriority);
  req.AttrU32(FRA_FWMARK, kDeliveryMark);
  req.AttrU32(FRA_FWMASK, kDeliveryMarkMask);
  req.AttrU32(FRA_TABLE, kDeliveryRouteTable);
  return req;
}

NlRequest RouteRequest(uint16_t type, uint16_t flags, int family, int lo_ifindex) {
  NlRequest req(type, flags);
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(family);
  rtm.rtm_dst_len = 0;
  rtm.rtm_table = RT_TABLE_UNSPEC;  // > 255: carried by RTA_TABLE
  rtm.rtm_protocol = RTPROT_BOOT;   // what `ip route add` uses
  rtm.rtm_scope = RT_SCOPE_HOST;
  rtm.rtm_type = RTN_LOCAL;
  req.Put(rtm);
  req.AttrU32(RTA_TABLE, kDeliveryRouteTable);
  req.AttrU32(RTA_OIF, static_cast<uint32_t>(lo_ifindex));
  return req;
}

// Sends a change; errno values in `benign` count as success.
absl::Status Apply(Rtnl& nl, NlRequest req, std::string_view what, std::initializer_list<int> benign) {
  std::string ext;
  ZM_ASSIGN_OR_RETURN(int err, nl.Call(req, what, &ext));
  if (err == 0) return absl::OkStatus();
  for (int b : benign) {
    if (err == b) return absl::OkStatus();
  }
  std::string msg = StrCat(what, ": ", ErrName(err));
  if (!ext.empty()) msg += StrCat(": ", ext);
  return absl::Status(absl::ErrnoToStatusCode(err), msg);
}

absl::StatusOr<bool> RulePresent(Rtnl& nl, int family) {
  NlRequest req(RTM_GETRULE, 0);
  fib_rule_hdr frh{};
  frh.family = static_cast<uint8_t>(family);
  req.Put(frh);
  bool found = false;
  ZM_RETURN_IF_ERROR(nl.Dump(req, StrCat("RTM_GETRULE(", FamilyName(family), " dump)"),
                             [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWRULE || h->nlmsg_len < NLMSG_LENGTH(sizeof(fib_rule_hdr))) return;
    const auto* r = reinterpret_cast<const fib_rule_hdr*>(NLMSG_DATA(h));
    if (r->action != FR_ACT_TO_TBL) return;
    uint32_t table = r->table, mark = 0, mask = 0, prio = 0;
    bool has_mark = false;
    ForEachAttr(h, sizeof(fib_rule_hdr), [&](const rtattr* a) {
      switch (a->rta_type) {
        case FRA_TABLE: table = AttrU32(a); break;
        case FRA_FWMARK: mark = AttrU32(a); has_mark = true; break;
        case FRA_FWMASK: mask = AttrU32(a); break;
        case FRA_PRIORITY: prio = AttrU32(a); break;
      }
    });
    if (has_mark && mark == kDeliveryMark && mask == kDeliveryMarkMask &&
        table == kDeliveryRouteTable && prio == kDeliveryRulePriority) {
      found = true;
    }
  }));
  return found;
}

absl::StatusOr<bool> RoutePresent(Rtnl& nl, int family, int lo_ifindex) {
  NlRequest req(RTM_GETROUTE, 0);
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(family);
  req.Put(rtm);
  bool found = false;
  ZM_RETURN_IF_ERROR(nl.Dump(req, StrCat("RTM_GETROUTE(", FamilyName(family), " dump)"),
                             [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE || h->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) return;
    const auto* r = reinterpret_cast<const rtmsg*>(NLMSG_DATA(h));
    if (r->rtm_type != RTN_LOCAL || r->rtm_dst_len != 0) return;
    uint32_t table = r->rtm_table, oif = 0;
    ForEachAttr(h, sizeof(rtmsg), [&](const rtattr* a) {
      if (a->rta_type == RTA_TABLE) table = AttrU32(a);
      if (a->rta_type == RTA_OIF) oif = AttrU32(a);
    });
    if (table == kDeliveryRouteTable && oif == static_cast<uint32_t>(lo_ifindex)) found = true;
  }));
  return found;
}

// ---- Helpers that must run inside the netns -------------------------------------------

absl::StatusOr<std::string> ReadSmallFile(const char* path) {
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open", path);
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n < 0) return ErrnoError("read", path);
  return std::string(buf, static_cast<size_t>(n));
}

absl::Status WriteSysctl(const char* path, std::string_view value) {
  Fd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open", path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoError("write", path);
  }
  return absl::OkStatus();
}

// IPv6 usable on lo: the stack is there and not disabled on lo.
bool Ipv6Enabled() {
  auto v = ReadSmallFile("/proc/sys/net/ipv6/conf/lo/disable_ipv6");
  return v.ok() && !v->empty() && (*v)[0] == '0';
}

absl::StatusOr<int> LoIfindex() {
  unsigned idx = ::if_nametoindex("lo");
  if (idx == 0) return ErrnoError("if_nametoindex", "lo");
  return static_cast<int>(idx);
}

std::vector<int> Families() {
  if (Ipv6Enabled()) return {AF_INET, AF_INET6};
  Log("agent").debug("in-pod routing: IPv6 disabled on lo, skipping the IPv6 rule and route");
  return {AF_INET};
}

}  // namespace

absl::Status InstallDeliveryRouting(int netns_fd) {
  return RunInNetns(netns_fd, []() -> absl::Status {
    ZM_RETURN_IF_ERROR(WriteSysctl(kFwmarkAcceptSysctl, "1"));
    ZM_RETURN_IF_ERROR(WriteSysctl(kFwmarkReflect4Sysctl, "1"));
    if (::access(kFwmarkReflect6Sysctl, W_OK) == 0) {
      ZM_RETURN_IF_ERROR(WriteSysctl(kFwmarkReflect6Sysctl, "1"));
    }
    if (::access(kTcpMigrateReqSysctl, W_OK) == 0) {
      ZM_RETURN_IF_ERROR(WriteSysctl(kTcpMigrateReqSysctl, "1"));
    }
    ZM_ASSIGN_OR_RETURN(int lo, LoIfindex());
    ZM_ASSIGN_OR_RETURN(Rtnl nl, Rtnl::Open());
    for (int family : Families()) {
      ZM_RETURN_IF_ERROR(Apply(nl, RuleRequest(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family),
                               StrCat("RTM_NEWRULE(", RuleText(family), ")"), {EEXIST}));
      // Replace, not exclusive create: another route for the same prefix in the table
      // (`unreachable default table 1337`) would answer EEXIST and stay in the way.
      ZM_RETURN_IF_ERROR(
          Apply(nl, RouteRequest(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, lo),
                StrCat("RTM_NEWROUTE(", RouteText(family), ")"), {}));
    }
    return absl::OkStatus();
  });
}

absl::Status RemoveDeliveryRouting(int netns_fd) {
  return RunInNetns(netns_fd, []() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(int lo, LoIfindex());
    ZM_ASSIGN_OR_RETURN(Rtnl nl, Rtnl::Open());
    // Both families whatever IPv6's state now: it may have been on at install time. An
    // absent entry answers ENOENT/ESRCH; a family without IPv6 at all, EAFNOSUPPORT.
    for (int family : {AF_INET, AF_INET6}) {
      ZM_RETURN_IF_ERROR(Apply(nl, RuleRequest(RTM_DELRULE, 0, family),
                               StrCat("RTM_DELRULE(", RuleText(family), ")"),
                               {ENOENT, ESRCH, EAFNOSUPPORT}));
      ZM_RETURN_IF_ERROR(Apply(nl, RouteRequest(RTM_DELROUTE, 0, family, lo),
                               StrCat("RTM_DELROUTE(", RouteText(family), ")"),
                               {ENOENT, ESRCH, EAFNOSUPPORT}));
    }
    if (::access(kFwmarkReflect6Sysctl, W_OK) == 0) {
      ZM_RETURN_IF_ERROR(WriteSysctl(kFwmarkReflect6Sysctl, "0"));
    }
    if (::access(kTcpMigrateReqSysctl, W_OK) == 0) {
      ZM_RETURN_IF_ERROR(WriteSysctl(kTcpMigrateReqSysctl, "0"));
    }
    ZM_RETURN_IF_ERROR(WriteSysctl(kFwmarkReflect4Sysctl, "0"));
    return WriteSysctl(kFwmarkAcceptSysctl, "0");
  });
}

absl::StatusOr<bool> DeliveryRoutingInstalled(int netns_fd) {
  bool installed = false;
  ZM_RETURN_IF_ERROR(RunInNetns(netns_fd, [&]() -> absl::Status {
    ZM_ASSIGN_OR_RETURN(std::string sysctl, ReadSmallFile(kFwmarkAcceptSysctl));
    if (sysctl.empty() || sysctl[0] != '1') return absl::OkStatus();
    ZM_ASSIGN_OR_RETURN(int lo, LoIfindex());
    ZM_ASSIGN_OR_RETURN(Rtnl nl, Rtnl::Open());
    for (int family : Families()) {
      ZM_ASSIGN_OR_RETURN(bool rule, RulePresent(nl, family));
      ZM_ASSIGN_OR_RETURN(bool route, RoutePresent(nl, family, lo));
      if (!rule || !route) return absl::OkStatus();
    }
    installed = true;
    return absl::OkStatus();
  }));
  return installed;
}

}  // namespace zm::agent

// ZDS framing and messages: every way a datagram can be wrong gets a named error, and no fd
// is leaked whatever arrives.
#include "common/zds/zds.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zmesh/zds/v1/zds.pb.h"

namespace zm::zds {
namespace {

int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

class ZdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a_.reset(sv[0]);
    b_.reset(sv[1]);
  }
  Fd OpenNull() { return Fd(open("/dev/null", O_RDONLY | O_CLOEXEC)); }
  Fd a_, b_;
};

TEST_F(ZdsTest, HelloRoundTrip) {
  ASSERT_TRUE(SendDatagram(a_.get(), EncodeHello(Hello{})).ok());
  auto d = RecvDatagram(b_.get());
  ASSERT_TRUE(d.ok()) << d.status();
  auto h = DecodeHello(std::move(*d));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->version, 1);
}

TEST_F(ZdsTest, HelloWithWrongVersionIsRefused) {
  ::zmesh::zds::v1::ZdsHello m;
  m.set_version(static_cast<::zmesh::zds::v1::Version>(7));
  ASSERT_TRUE(SendDatagram(a_.get(), m.SerializeAsString()).ok());
  auto h = DecodeHello(*RecvDatagram(b_.get()));
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("version 7"), std::string_view::npos);
}

TEST_F(ZdsTest, AddCarriesTheNetnsFd) {
  Fd null = OpenNull();
  AddWorkload add{.uid = "u1", .name = "client", .ns = "demo", .service_account = "sa",
                  .netns = std::move(null)};
  ASSERT_TRUE(SendRequest(a_.get(), Request(std::move(add))).ok());
  auto req = DecodeRequest(*RecvDatagram(b_.get()));
  ASSERT_TRUE(req.ok()) << req.status();
  auto* got = std::get_if<AddWorkload>(&*req);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->uid, "u1");
  EXPECT_EQ(got->name, "client");
  EXPECT_EQ(got->ns, "demo");
  EXPECT_EQ(got->service_account, "sa");
  EXPECT_TRUE(got->netns.valid());
  EXPECT_EQ(Describe(*req), "add(u1 demo/client)");
}

TEST_F(ZdsTest, AddWithoutFdIsRefused) {
  AddWorkload add{.uid = "u1"};
  ASSERT_TRUE(SendDatagram(a_.get(), EncodeRequest(Request(std::move(add)))).ok());
  auto req = DecodeRequest(*RecvDatagram(b_.get()));
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.status().message().find("exactly one netns fd, got 0"), std::string_view::npos)
      << req.status();
}

TEST_F(ZdsTest, AddWithExtraFdsIsRefusedAndClosesThem) {
  int before = CountOpenFds();
  {
    Fd f1 = OpenNull(), f2 = OpenNull();
    AddWorkload add{.uid = "u1"};
    ASSERT_TRUE(
        SendDatagram(a_.get(), EncodeRequest(Request(std::move(add))), {f1.get(), f2.get()}).ok());
  }
  auto req = DecodeRequest(*RecvDatagram(b_.get()));
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.status().message().find("got 2"), std::string_view::npos);
  EXPECT_EQ(CountOpenFds(), before);
}

TEST_F(ZdsTest, DelWithFdIsRefused) {
  Fd f = OpenNull();
  ASSERT_TRUE(
      SendDatagram(a_.get(), EncodeRequest(Request(DelWorkload{.uid = "u"})), {f.get()}).ok());
  auto req = DecodeRequest(*RecvDatagram(b_.get()));
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.status().message().find("del must carry no fds"), std::string_view::npos);
}

TEST_F(ZdsTest, KeepDelSnapshotRoundTrip) {
  for (const Request& r : {Request(KeepWorkload{.uid = "k"}), Request(DelWorkload{.uid = "d"}),
                           Request(SnapshotSent{})}) {
    ASSERT_TRUE(SendRequest(a_.get(), r).ok());
    auto got = DecodeRequest(*RecvDatagram(b_.get()));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->index(), r.index());
    EXPECT_EQ(Describe(*got), Describe(r));
  }
}

TEST_F(ZdsTest, DelUsesIstioFieldNumberTwo) {
  // Istio's DelWorkload has uid = 2; a peer built from Istio's proto must interoperate.
  std::string wire = EncodeRequest(Request(DelWorkload{.uid = "x"}));
  // WorkloadRequest.del (field 2, LEN) { DelWorkload.uid (field 2, LEN) "x" }
  EXPECT_EQ(wire, std::string("\x12\x03\x12\x01x", 5));
}

TEST_F(ZdsTest, GarbageIsRefused) {
  ASSERT_TRUE(SendDatagram(a_.get(), std::string("\xff\xff\xff\xff\x0f", 5)).ok());
  auto req = DecodeRequest(*RecvDatagram(b_.get()));
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.status().message().find("malformed ZDS workload request"), std::string_view::npos);
}

TEST_F(ZdsTest, EmptyPayloadIsRefused) {
  // A valid protobuf with no oneof set.
  ASSERT_TRUE(SendDatagram(a_.get(), std::string("\x50\x01", 2)).ok());  // unknown field 10
  auto req = DecodeRequest(*RecvDatagram(b_.get()));
  ASSERT_FALSE(req.ok());
  EXPECT_NE(req.status().message().find("no payload"), std::string_view::npos);
}

TEST_F(ZdsTest, OversizedDatagramIsTruncatedAndRefused) {
  std::string big(kMaxDatagram + 100, 'x');
  // Bypass SendDatagram's own size check: a hostile peer would.
  ASSERT_EQ(send(a_.get(), big.data(), big.size(), 0), static_cast<ssize_t>(big.size()));
  auto d = RecvDatagram(b_.get());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("truncated"), std::string_view::npos);
}

TEST_F(ZdsTest, TooManyFdsIsRefusedWithoutLeaking) {
  int before = CountOpenFds();
  {
    std::vector<Fd> owned;
    std::vector<int> raw;
    for (size_t i = 0; i < kMaxFds + 3; ++i) {
      owned.push_back(OpenNull());
      raw.push_back(owned.back().get());
    }
    // Send with raw sendmsg because SendDatagram refuses this.
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 3))] = {};
    char byte = 'x';
    iovec iov{.iov_base = &byte, .iov_len = 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * raw.size());
    memcpy(CMSG_DATA(c), raw.data(), sizeof(int) * raw.size());
    ASSERT_EQ(sendmsg(a_.get(), &msg, 0), 1);
  }
  auto d = RecvDatagram(b_.get());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("truncated"), std::string_view::npos);
  EXPECT_EQ(CountOpenFds(), before);
}

TEST_F(ZdsTest, PeerCloseIsUnavailable) {
  a_.reset();
  auto d = RecvDatagram(b_.get());
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(absl::IsUnavailable(d.status())) << d.status();
}

TEST_F(ZdsTest, AckCarriesListenerFds) {
  Fd f = OpenNull();
  ASSERT_TRUE(SendAck(a_.get(), "", {f.get()}).ok());
  auto ack = DecodeAck(*RecvDatagram(b_.get()));
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->error.empty());
  ASSERT_EQ(ack->listeners.size(), 1u);
  ASSERT_TRUE(SendAck(a_.get(), "netns gone").ok());
  ack = DecodeAck(*RecvDatagram(b_.get()));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->error, "netns gone");
}

}  // namespace
}  // namespace zm::zds

// HBONE sessions end to end over plain TCP on loopback: app <-> HboneClientSession <->
// HboneServerSession <-> upstream.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <thread>

#include "tests/common/hbone/hbone_test_util.h"

namespace zm::hbone::testing {
namespace {

class HboneSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { h_.StartServer(ServerOptions()); }
  virtual SessionOptions ServerOptions() { return {}; }
  HboneHarness h_;
};

// Sends `data` then FIN from `fd`, on a thread of its own.
std::thread SendThenFin(int fd, std::string data) {
  return std::thread([fd, data = std::move(data)] {
    EXPECT_TRUE(SendAll(fd, data));
    ::shutdown(fd, SHUT_WR);
  });
}

TEST_F(HboneSessionTest, RelaysSeveralMiBBothWaysWithHeaders) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(
      c, {{"forwarded", "for=10.0.0.7:41234"},
          {"baggage", "k8s.namespace.name=test"},
          {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  ASSERT_TRUE(t.app && t.upstream);
  const std::string up = Pattern(6 << 20, 1), down = Pattern(5 << 20, 2);
  std::thread a = SendThenFin(t.app.get(), up);
  std::thread b = SendThenFin(t.upstream.get(), down);
  ReadResult at_upstream;
  std::thread reader([&] { at_upstream = ReadUntilEnd(t.upstream.get(), SIZE_MAX, 20s); });
  ReadResult at_app = ReadUntilEnd(t.app.get(), SIZE_MAX, 20s);
  reader.join();
  a.join();
  b.join();
  EXPECT_TRUE(at_app.eof);
  EXPECT_TRUE(at_upstream.eof);
  EXPECT_EQ(at_upstream.data.size(), up.size());
  EXPECT_TRUE(at_upstream.data == up);
  EXPECT_EQ(at_app.data.size(), down.size());
  EXPECT_TRUE(at_app.data == down);

  ASSERT_EQ(t.client_done.wait_for(kDeadline), std::future_status::ready);
  StreamResult cr = t.client_done.get();
  EXPECT_EQ(cr.result, "ok") << cr.detail;
  EXPECT_EQ(cr.bytes_to_stream, up.size());
  EXPECT_EQ(cr.bytes_to_socket, down.size());
  ASSERT_TRUE(WaitFor([&] { return h_.server_results().size() == 1; }));
  StreamResult sr = h_.server_results()[0];
  EXPECT_EQ(sr.result, "ok") << sr.detail;
  EXPECT_EQ(sr.bytes_to_socket, up.size());
  EXPECT_EQ(sr.bytes_to_stream, down.size());

  auto reqs = h_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].authority, h_.UpstreamAuthority());
  EXPECT_EQ(reqs[0].target.ToString(), h_.UpstreamAuthority());
  EXPECT_EQ(reqs[0].peer_identity, kPeerIdentity);
  EXPECT_EQ(reqs[0].Find("forwarded"), "for=10.0.0.7:41234");
  EXPECT_EQ(reqs[0].Find("baggage"), "k8s.namespace.name=test");
  EXPECT_EQ(reqs[0].Find("traceparent"), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  // The stream is gone on both sides once both directions finished.
  EXPECT_TRUE(WaitFor([&] { return h_.Run([&] { return c->active_streams(); }) == 0; }));
  auto s = h_.server_session(0);
  EXPECT_TRUE(WaitFor([&] { return h_.Run([&] { return s->active_streams(); }) == 0; }));
}

TEST_F(HboneSessionTest, UpstreamRefusedIs503) {
  uint16_t closed_port;
  {
    Fd l = Listen4();
    closed_port = LocalPort(l.get());
  }
  auto c = h_.NewClient();
  OpenResult r = h_.Open(c, zm::StrCat("127.0.0.1:", closed_port));
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 503);
  EXPECT_EQ(r.stream, nullptr);
}

TEST_F(HboneSessionTest, NoResponseUntilUpstreamConnected) {
  std::mutex mu;
  std::vector<std::pair<ConnectRequest, Responder>> pending;
  h_.SetOnConnect([&](ConnectRequest req, Responder r) {
    std::lock_guard l(mu);
    pending.emplace_back(std::move(req), std::move(r));
  });
  auto c = h_.NewClient();
  auto f = h_.OpenAsync(c, h_.UpstreamAuthority());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard l(mu);
    return pending.size() == 1;
  }));
  // The upstream connect "hangs": the client keeps waiting (bounded check of an absence).
  EXPECT_EQ(f.wait_for(200ms), std::future_status::timeout);
  // Now it succeeds: only then the 200.
  h_.Run([&] {
    std::lock_guard l(mu);
    tcp::socket s(h_.ioc());
    s.connect(ToAsio(pending[0].first.target));
    pending[0].second.Accept(std::move(s));
    return 0;
  });
  OpenResult r = HboneHarness::Wait(f);
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 200);
  Fd up = AcceptWithin(h_.upstream_listener());
  std::shared_future<StreamResult> done;
  Fd app = h_.AttachApp(r.stream, &done);
  ASSERT_TRUE(SendAll(app.get(), "ping"));
  EXPECT_EQ(ReadUntilEnd(up.get(), 4).data, "ping");
  ASSERT_TRUE(SendAll(up.get(), "pong"));
  EXPECT_EQ(ReadUntilEnd(app.get(), 4).data, "pong");
}

TEST_F(HboneSessionTest, RejectReachesClient) {
  h_.SetOnConnect([](ConnectRequest, Responder r) { r.Reject(401); });
  auto c = h_.NewClient();
  OpenResult r = h_.Open(c, h_.UpstreamAuthority());
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 401);
  // The session stays usable and the rejected stream is gone on both sides.
  EXPECT_TRUE(WaitFor([&] { return h_.Run([&] { return c->active_streams(); }) == 0; }));
  h_.SetOnConnect(nullptr);
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
}

TEST_F(HboneSessionTest, DroppedResponderIs503) {
  h_.SetOnConnect([](ConnectRequest, Responder) {});
  auto c = h_.NewClient();
  OpenResult r = h_.Open(c, h_.UpstreamAuthority());
  ASSERT_TRUE(r.status.ok()) << r.status.status();
  EXPECT_EQ(*r.status, 503);
}

TEST_F(HboneSessionTest, HalfCloseClientToServer) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  ASSERT_TRUE(SendAll(t.app.get(), "request"));
  ::shutdown(t.app.get(), SHUT_WR);
  ReadResult r = ReadUntilEnd(t.upstream.get());
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.data, "request");
  // The other direction still works after the half-close.
  ASSERT_TRUE(SendAll(t.upstream.get(), "late reply"));
  ::shutdown(t.upstream.get(), SHUT_WR);
  ReadResult a = ReadUntilEnd(t.app.get());
  EXPECT_TRUE(a.eof);
  EXPECT_EQ(a.data, "late reply");
  ASSERT_EQ(t.client_done.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(t.client_done.get().result, "ok");
}

TEST_F(HboneSessionTest, HalfCloseServerToClient) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  ASSERT_TRUE(SendAll(t.upstream.get(), "banner"));
  ::shutdown(t.upstream.get(), SHUT_WR);
  ReadResult a = ReadUntilEnd(t.app.get());
  EXPECT_TRUE(a.eof);
  EXPECT_EQ(a.data, "banner");
  ASSERT_TRUE(SendAll(t.app.get(), "after eof"));
  ::shutdown(t.app.get(), SHUT_WR);
  ReadResult r = ReadUntilEnd(t.upstream.get());
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.data, "after eof");
  ASSERT_TRUE(WaitFor([&] { return h_.server_results().size() == 1; }));
  EXPECT_EQ(h_.server_results()[0].result, "ok");
}

TEST_F(HboneSessionTest, ClientResetResetsUpstream) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  ASSERT_TRUE(SendAll(t.app.get(), "x"));
  EXPECT_EQ(ReadUntilEnd(t.upstream.get(), 1).data, "x");
  zm::ztunnel::testing::LingerZero(t.app.get());
  t.app.reset();  // RST from the app -> RST_STREAM -> RST to the upstream
  ReadResult r = ReadUntilEnd(t.upstream.get());
  EXPECT_EQ(r.error, ECONNRESET) << "eof=" << r.eof << " timed_out=" << r.timed_out;
  ASSERT_EQ(t.client_done.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(t.client_done.get().result, "socket-reset");
  ASSERT_TRUE(WaitFor([&] { return h_.server_results().size() == 1; }));
  EXPECT_EQ(h_.server_results()[0].result, "peer-reset");
}

TEST_F(HboneSessionTest, StreamResetCallResetsBothEnds) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  t.stream->Reset();
  EXPECT_EQ(ReadUntilEnd(t.upstream.get()).error, ECONNRESET);
  EXPECT_EQ(ReadUntilEnd(t.app.get()).error, ECONNRESET);
  ASSERT_EQ(t.client_done.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(t.client_done.get().result, "local-reset");
}

TEST_F(HboneSessionTest, UpstreamResetReachesClientAsReset) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  zm::ztunnel::testing::LingerZero(t.upstream.get());
  t.upstream.reset();
  ReadResult r = ReadUntilEnd(t.app.get());
  EXPECT_EQ(r.error, ECONNRESET) << "eof=" << r.eof << " timed_out=" << r.timed_out;
  ASSERT_EQ(t.client_done.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(t.client_done.get().result, "peer-reset");
  ASSERT_TRUE(WaitFor([&] { return h_.server_results().size() == 1; }));
  EXPECT_EQ(h_.server_results()[0].result, "socket-reset");
}

TEST_F(HboneSessionTest, FiftyConcurrentStreamsOnOneSession) {
  constexpr int kStreams = 50;
  auto c = h_.NewClient();
  std::vector<std::future<OpenResult>> opens;
  for (int i = 0; i < kStreams; ++i) opens.push_back(h_.OpenAsync(c, h_.UpstreamAuthority()));
  std::vector<OpenResult> results;
  for (auto& f : opens) {
    results.push_back(HboneHarness::Wait(f));
    ASSERT_TRUE(results.back().status.ok() && *results.back().status == 200)
        << results.back().status.status();
  }
  EXPECT_EQ(h_.Run([&] { return c->active_streams(); }), size_t{kStreams});
  std::vector<Fd> ups, apps;
  std::vector<std::shared_future<StreamResult>> dones(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    ups.push_back(AcceptWithin(h_.upstream_listener()));
    ASSERT_TRUE(ups.back());
  }
  for (int i = 0; i < kStreams; ++i) apps.push_back(h_.AttachApp(results[i].stream, &dones[i]));
  char msg[32];
  for (int i = 0; i < kStreams; ++i) {
    std::snprintf(msg, sizeof(msg), "stream-%03d\n", i);
    ASSERT_TRUE(SendAll(apps[i].get(), msg));
  }
  // Which upstream connection belongs to which stream is the server's business: each
  // upstream echoes what it got, and each app must get its own message back.
  for (auto& up : ups) {
    ReadResult r = ReadUntilEnd(up.get(), 11);
    ASSERT_EQ(r.data.size(), 11u);
    ASSERT_TRUE(SendAll(up.get(), "echo-" + r.data));
  }
  for (int i = 0; i < kStreams; ++i) {
    std::snprintf(msg, sizeof(msg), "echo-stream-%03d\n", i);
    EXPECT_EQ(ReadUntilEnd(apps[i].get(), 16).data, msg);
  }
  EXPECT_EQ(h_.server_session_count(), 1u);
}

// Writes from `writer` (non-blocking) until the writes stall for 500 ms, a bounded check of
// an absence; returns the bytes written (0 and a test failure if they never stall).
size_t WriteUntilStalled(int writer, uint32_t seed) {
  EXPECT_EQ(::fcntl(writer, F_SETFL, ::fcntl(writer, F_GETFL) | O_NONBLOCK), 0);
  constexpr size_t kChunk = 64 * 1024, kLimit = 256u << 20;
  size_t written = 0;
  auto until = std::chrono::steady_clock::now() + 30s;
  while (written < kLimit && std::chrono::steady_clock::now() < until) {
    std::string chunk = Pattern(kChunk, seed, written);
    ssize_t n = ::send(writer, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      ADD_FAILURE() << "send: " << errno;
      return 0;
    }
    if (!zm::ztunnel::testing::PollFd(writer, POLLOUT, 500ms)) return written;
  }
  ADD_FAILURE() << "wrote " << written << " bytes without stalling";
  return 0;
}

// The receiving side never reads: the sender's writes stall, the session holding the
// stream's data buffers at most one stream window, and everything arrives once it reads.
void CheckBackPressure(HboneHarness& h, const std::shared_ptr<SessionBase>& receiving_session,
                       int writer, int reader, uint32_t seed) {
  size_t written = WriteUntilStalled(writer, seed);
  ASSERT_GT(written, 0u);
  SessionStats st = h.Run([&] { return receiving_session->stats(); });
  EXPECT_LE(st.buffered_bytes, size_t{4} << 20);
  EXPECT_GT(st.buffered_bytes, 0u);
  // Socket buffers on 4 sockets plus the window: tens of MiB at most, not unbounded.
  EXPECT_LT(written, size_t{96} << 20);
  std::printf("wrote %zu bytes before stalling; %zu buffered in the session\n", written,
              st.buffered_bytes);
  ::shutdown(writer, SHUT_WR);
  ReadResult r = ReadUntilEnd(reader, SIZE_MAX, 30s);
  EXPECT_TRUE(r.eof);
  ASSERT_EQ(r.data.size(), written);
  EXPECT_TRUE(r.data == Pattern(written, seed));
}

TEST_F(HboneSessionTest, SlowUpstreamBackPressuresTheClient) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  CheckBackPressure(h_, h_.server_session(0), t.app.get(), t.upstream.get(), 9);
}

TEST_F(HboneSessionTest, SlowAppBackPressuresTheUpstream) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  CheckBackPressure(h_, c, t.upstream.get(), t.app.get(), 10);
}

TEST_F(HboneSessionTest, SessionDeathWhileWaitingFailsTheOpen) {
  std::mutex mu;
  std::vector<Responder> pending;
  h_.SetOnConnect([&](ConnectRequest, Responder r) {
    std::lock_guard l(mu);
    pending.push_back(std::move(r));
  });
  auto c = h_.NewClient();
  auto f = h_.OpenAsync(c, h_.UpstreamAuthority());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard l(mu);
    return pending.size() == 1;
  }));
  auto s = h_.server_session(0);
  h_.Run([&] {
    s->Close("test");
    return 0;
  });
  OpenResult r = HboneHarness::Wait(f);
  EXPECT_EQ(r.status.status().code(), absl::StatusCode::kUnavailable) << r.status.status();
  // Answering afterwards is harmless: the upstream socket is reset, `done` says why.
  std::promise<StreamResult> done;
  h_.Run([&] {
    tcp::socket sock(h_.ioc());
    sock.connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), LocalPort(h_.upstream_listener())));
    std::lock_guard l(mu);
    pending[0].Accept(std::move(sock), [&](const StreamResult& res) { done.set_value(res); });
    return 0;
  });
  auto df = done.get_future();
  ASSERT_EQ(df.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(df.get().result, "session-closed");
  Fd up = AcceptWithin(h_.upstream_listener());
  EXPECT_EQ(ReadUntilEnd(up.get()).error, ECONNRESET);
}

TEST_F(HboneSessionTest, MalformedAuthorityIs400) {
  auto c = h_.NewClient();
  for (const char* a :
       {"not-an-ip:80", "[127.0.0.1]:80", "127.0.0.1", "127.0.0.1:99999", "::1:80"}) {
    OpenResult r = h_.Open(c, a);
    ASSERT_TRUE(r.status.ok()) << a << ": " << r.status.status();
    EXPECT_EQ(*r.status, 400) << a;
  }
  EXPECT_TRUE(h_.requests().empty());
}

TEST_F(HboneSessionTest, NonConnectRequestsAre400) {
  auto c = h_.NewClient();
  const std::vector<std::vector<Header>> bad = {
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {":authority", "127.0.0.1:80"}},
      {{":method", "CONNECT"}},
      {{":authority", "127.0.0.1:80"}},
      {{":method", "CONNECT"}, {":authority", "127.0.0.1:80"}, {":path", "/"}},
      {{":method", "CONNECT"}, {":authority", "127.0.0.1:80"}, {":authority", "127.0.0.1:81"}},
      {{":method", "CONNECT"}, {":authority", "127.0.0.1:80"}, {":protocol", "websocket"}},
  };
  for (const auto& headers : bad) {
    OpenResult r = h_.OpenRaw(c, headers);
    ASSERT_TRUE(r.status.ok()) << headers[0].value << ": " << r.status.status();
    EXPECT_EQ(*r.status, 400) << headers.size();
  }
  EXPECT_TRUE(h_.requests().empty());
  Tunnel t = h_.OpenTunnel(c);  // the session is fine
  EXPECT_TRUE(t.app);
}

TEST_F(HboneSessionTest, GarbagePrefaceClosesOnlyThatSession) {
  auto c = h_.NewClient();
  Fd raw = Connect4(h_.server_port());
  ASSERT_TRUE(SendAll(raw.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ReadResult r = ReadUntilEnd(raw.get());
  EXPECT_FALSE(r.timed_out);  // closed by the server
  ASSERT_TRUE(WaitFor([&] { return h_.closed_reasons().size() == 1; }));
  EXPECT_NE(h_.closed_reasons()[0].find("bad HTTP/2"), std::string::npos) << h_.closed_reasons()[0];
  // The earlier session and a new one both still work.
  Tunnel t1 = h_.OpenTunnel(c);
  EXPECT_TRUE(t1.app);
  Tunnel t2 = h_.OpenTunnel(h_.NewClient());
  EXPECT_TRUE(t2.app);
}

TEST_F(HboneSessionTest, TruncatedFrameThenEofClosesCleanly) {
  Fd raw = Connect4(h_.server_port());
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bytes += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);  // empty SETTINGS
  // HEADERS on stream 1 announcing 200 bytes, cut after 5.
  bytes += std::string("\x00\x00\xc8\x01\x04\x00\x00\x00\x01\x82\x86\x84\x41\x8a", 14);
  ASSERT_TRUE(SendAll(raw.get(), bytes));
  ::shutdown(raw.get(), SHUT_WR);
  ReadResult r = ReadUntilEnd(raw.get());
  EXPECT_TRUE(r.eof || r.error != 0);
  EXPECT_FALSE(r.timed_out);
  ASSERT_TRUE(WaitFor([&] { return h_.closed_reasons().size() == 1; }));
  EXPECT_EQ(h_.closed_reasons()[0], "peer closed the connection");
  Tunnel t = h_.OpenTunnel(h_.NewClient());
  EXPECT_TRUE(t.app);
}

TEST_F(HboneSessionTest, NghttpGetIs400) {
  if (::access("/usr/bin/nghttp", X_OK) != 0) GTEST_SKIP() << "nghttp not installed";
  // nghttp cannot send CONNECT; a GET over h2c (prior knowledge) must get a 400.
  std::string cmd =
      zm::StrCat("timeout 10 /usr/bin/nghttp -v http://127.0.0.1:", h_.server_port(), "/ 2>&1");
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  EXPECT_NE(out.find(":status: 400"), std::string::npos) << out;
}

class HbonePingTest : public HboneSessionTest {
 protected:
  SessionOptions ServerOptions() override {
    SessionOptions o;
    o.ping_interval = 20ms;
    o.ping_timeout = 100ms;
    return o;
  }
};

TEST_F(HbonePingTest, SilentPeerIsClosedAfterPingTimeout) {
  Fd raw = Connect4(h_.server_port());
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bytes += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  ASSERT_TRUE(SendAll(raw.get(), bytes));
  // The peer never answers PINGs (it reads nothing): the server gives up.
  ASSERT_TRUE(WaitFor([&] { return h_.closed_reasons().size() == 1; }));
  EXPECT_EQ(h_.closed_reasons()[0], "PING timeout");
  ReadResult r = ReadUntilEnd(raw.get());
  EXPECT_FALSE(r.timed_out);
}

TEST_F(HbonePingTest, AnsweredPingsKeepTheSession) {
  auto c = h_.NewClient();
  Tunnel t = h_.OpenTunnel(c);
  ASSERT_TRUE(t.app);
  auto s = h_.server_session(0);
  ASSERT_TRUE(WaitFor([&] { return h_.Run([&] { return s->stats().pings_acked; }) >= 5; }));
  EXPECT_FALSE(h_.Run([&] { return s->closed(); }));
  ASSERT_TRUE(SendAll(t.app.get(), "still here"));
  EXPECT_EQ(ReadUntilEnd(t.upstream.get(), 10).data, "still here");
}

}  // namespace
}  // namespace zm::hbone::testing

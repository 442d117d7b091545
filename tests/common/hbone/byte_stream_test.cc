// In-process pipes (common/hbone/byte_stream.h) on their own, and as the far end of an HBONE
// CONNECT stream (what the waypoint does with a stream's bytes).
#include "common/hbone/byte_stream.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/common/hbone/hbone_test_util.h"

namespace zm::hbone {
namespace {

using namespace zm::hbone::testing;  // NOLINT

// Runs the io_context until `done` or a deadline.
void RunUntil(asio::io_context& ioc, const bool& done) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done && std::chrono::steady_clock::now() < until) {
    ioc.run_for(std::chrono::milliseconds(10));
    if (ioc.stopped()) ioc.restart();
  }
}

TEST(PipeTest, BytesFlowBothWaysAndEofFollowsShutdown) {
  asio::io_context ioc;
  auto [a, b] = MakePipe(ioc.get_executor(), 8);
  std::string got;
  bool done = false;
  std::function<void()> read_more;
  char buf[3];
  read_more = [&] {
    b->AsyncReadSome(asio::buffer(buf), [&](const asio::error_code& ec, size_t n) {
      if (ec == asio::error::eof) {
        done = true;
        return;
      }
      ASSERT_FALSE(ec) << ec.message();
      got.append(buf, n);
      read_more();
    });
  };
  read_more();
  // 20 bytes through an 8-byte pipe: partial writes, the writer waits for room.
  std::string msg = "0123456789abcdefghij";
  size_t off = 0;
  std::function<void()> write_more = [&] {
    if (off == msg.size()) {
      a->ShutdownSend();
      return;
    }
    a->AsyncWriteSome({asio::buffer(msg.data() + off, msg.size() - off)},
                      [&](const asio::error_code& ec, size_t n) {
                        ASSERT_FALSE(ec) << ec.message();
                        EXPECT_LE(n, 8u);
                        off += n;
                        write_more();
                      });
  };
  write_more();
  RunUntil(ioc, done);
  EXPECT_TRUE(done);
  EXPECT_EQ(got, msg);
}

TEST(PipeTest, ResetFailsTheOtherEnd) {
  asio::io_context ioc;
  auto [a, b] = MakePipe(ioc.get_executor());
  asio::error_code read_ec, write_ec;
  bool read_done = false, write_done = false;
  char buf[4];
  b->AsyncReadSome(asio::buffer(buf), [&](const asio::error_code& ec, size_t) {
    read_ec = ec;
    read_done = true;
  });
  a->Reset();
  RunUntil(ioc, read_done);
  EXPECT_EQ(read_ec, asio::error::connection_reset);
  b->AsyncWriteSome({asio::buffer("x", 1)}, [&](const asio::error_code& ec, size_t) {
    write_ec = ec;
    write_done = true;
  });
  RunUntil(ioc, write_done);
  EXPECT_EQ(write_ec, asio::error::connection_reset);
}

TEST(PipeTest, ClosedReaderBreaksTheWriterAndTheReaderStillGetsWhatWasSent) {
  asio::io_context ioc;
  auto [a, b] = MakePipe(ioc.get_executor());
  bool done = false;
  asio::error_code ec1;
  a->AsyncWriteSome({asio::buffer("hello", 5)}, [&](const asio::error_code& ec, size_t) {
    ec1 = ec;
  });
  ioc.run_for(std::chrono::milliseconds(20));
  ioc.restart();
  EXPECT_FALSE(ec1);
  // a closes: b reads "hello" then EOF; b's writes fail.
  a->Close();
  std::string got;
  char buf[16];
  std::function<void()> read_more = [&] {
    b->AsyncReadSome(asio::buffer(buf), [&](const asio::error_code& ec, size_t n) {
      if (ec) {
        EXPECT_EQ(ec, asio::error::eof);
        done = true;
        return;
      }
      got.append(buf, n);
      read_more();
    });
  };
  read_more();
  RunUntil(ioc, done);
  EXPECT_EQ(got, "hello");
  bool wrote = false;
  asio::error_code wec;
  b->AsyncWriteSome({asio::buffer("x", 1)}, [&](const asio::error_code& ec, size_t) {
    wec = ec;
    wrote = true;
  });
  RunUntil(ioc, wrote);
  EXPECT_EQ(wec, asio::error::broken_pipe);
}

// An HBONE CONNECT accepted with one end of a pipe; this test plays the waypoint on the other
// end (an upper-casing echo) and the client talks through the tunnel from a real socket.
TEST(PipeTest, TerminatesAnHboneStreamInProcess) {
  HboneHarness h;
  h.StartServer();
  std::shared_ptr<ByteStream> app_end;
  std::string seen;
  h.SetOnConnect([&](ConnectRequest, Responder r) {
    auto [peer, app] = MakePipe(h.ioc().get_executor());
    r.Accept(std::move(peer));
    app_end = std::move(app);
    auto buf = std::make_shared<std::array<char, 4096>>();
    auto loop = std::make_shared<std::function<void()>>();
    *loop = [&, buf, loop] {
      app_end->AsyncReadSome(asio::buffer(*buf), [&, buf, loop](const asio::error_code& ec,
                                                                size_t n) {
        if (ec) {
          app_end->ShutdownSend();
          return;
        }
        auto out = std::make_shared<std::string>(buf->data(), n);
        seen += *out;
        for (char& c : *out) c = static_cast<char>(std::toupper(c));
        app_end->AsyncWriteSome({asio::buffer(*out)},
                                [&, out, loop](const asio::error_code& ec2, size_t m) {
                                  ASSERT_FALSE(ec2);
                                  ASSERT_EQ(m, out->size());  // small: fits in the pipe
                                  (*loop)();
                                });
      });
    };
    (*loop)();
  });
  auto c = h.NewClient();
  OpenResult r = h.Open(c, "127.0.0.1:9", {});
  ASSERT_TRUE(r.status.ok() && *r.status == 200) << r.status.status();
  std::shared_future<StreamResult> done;
  Fd app = h.AttachApp(r.stream, &done);
  ASSERT_TRUE(SendAll(app.get(), "hello through the tunnel"));
  ::shutdown(app.get(), SHUT_WR);
  ReadResult back = ReadUntilEnd(app.get());
  EXPECT_TRUE(back.eof);
  EXPECT_EQ(back.data, "HELLO THROUGH THE TUNNEL");
  EXPECT_EQ(h.Run([&] { return seen; }), "hello through the tunnel");
  ASSERT_EQ(done.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(done.get().result, "ok");
  h.Run([&] {
    app_end.reset();
    return 0;
  });
}

}  // namespace
}  // namespace zm::hbone

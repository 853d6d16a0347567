// socket_readiness: after a read that came up short, the next read still sees everything that
// comes later: more bytes, and the peer's close even when it was taken with the last bytes.
#define BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE 16
#include "net/socket_readiness.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

namespace slipway::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

struct ReadResult {
  error_code ec;
  std::string bytes;
};

// A connected pair on loopback: `ours` on an io_context run by this thread only, as the proxy
// engine's loops are, and `theirs` a blocking peer.
class SocketReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    theirs_.emplace(peer_io_);
    theirs_->connect(acceptor.local_endpoint());
    ours_.emplace(acceptor.accept());
    TrackPeerClose(*ours_);
  }

  void PeerWrites(std::string_view bytes) { asio::write(*theirs_, asio::buffer(bytes)); }
  void PeerCloses() { theirs_->close(); }

  // Starts a read into a buffer larger than anything the peer sends, so each read comes up
  // short; its result lands in `out`.
  void StartRead(std::optional<ReadResult>* out) {
    ours_->async_read_some(asio::buffer(buffer_), [this, out](error_code ec, size_t n) {
      if (!ec && n < buffer_.size()) ReadCameUpShort(*ours_);
      *out = ReadResult{ec, std::string(buffer_.data(), n)};
    });
  }

  // Runs the loop until the read finished, for at most `limit`.
  bool Finishes(const std::optional<ReadResult>& result, std::chrono::milliseconds limit = 5s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!result && std::chrono::steady_clock::now() < until) io_.run_for(10ms);
    io_.restart();
    return result.has_value();
  }

  asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::io_context peer_io_;  // never run: the peer's socket is used blocking
  std::optional<tcp::socket> ours_, theirs_;
  std::array<char, 4096> buffer_{};
};

TEST_F(SocketReadinessTest, BytesThatArriveAfterAShortReadAreRead) {
  PeerWrites("abc");
  std::optional<ReadResult> first, second;
  StartRead(&first);
  ASSERT_TRUE(Finishes(first));
  EXPECT_EQ(first->bytes, "abc");

  StartRead(&second);
  io_.poll();
  EXPECT_FALSE(second) << "nothing was sent yet";
  PeerWrites("defg");
  ASSERT_TRUE(Finishes(second)) << "the bytes sent after the short read never reached the read";
  EXPECT_EQ(second->bytes, "defg");
}

TEST_F(SocketReadinessTest, ACloseThatCameBeforeTheFirstReadEndsTheRead) {
  // Both the bytes and the FIN are in the socket before the reactor ever looked at it.
  PeerWrites("abc");
  PeerCloses();
  std::this_thread::sleep_for(50ms);
  std::optional<ReadResult> first, second;
  StartRead(&first);
  ASSERT_TRUE(Finishes(first));
  EXPECT_EQ(first->bytes, "abc");
  StartRead(&second);
  ASSERT_TRUE(Finishes(second)) << "the peer's close was taken with the last bytes and lost";
  EXPECT_EQ(second->ec, asio::error::eof);
}

TEST_F(SocketReadinessTest, ACloseReportedWithTheLastBytesEndsTheNextRead) {
  // The read waits in the reactor first; then the bytes and the FIN arrive before the reactor
  // runs again, so one report carries both and no edge follows the read that takes them.
  std::optional<ReadResult> first, second;
  StartRead(&first);
  io_.poll();
  ASSERT_FALSE(first);
  PeerWrites("abc");
  PeerCloses();
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(Finishes(first));
  EXPECT_EQ(first->bytes, "abc");
  StartRead(&second);
  ASSERT_TRUE(Finishes(second)) << "the peer's close was reported with the last bytes and lost";
  EXPECT_EQ(second->ec, asio::error::eof);
}

TEST_F(SocketReadinessTest, ACloseAfterAShortReadEndsTheNextRead) {
  PeerWrites("abc");
  std::optional<ReadResult> first, second;
  StartRead(&first);
  ASSERT_TRUE(Finishes(first));
  StartRead(&second);
  io_.poll();
  ASSERT_FALSE(second);
  PeerCloses();
  ASSERT_TRUE(Finishes(second));
  EXPECT_EQ(second->ec, asio::error::eof);
}

}  // namespace
}  // namespace slipway::net

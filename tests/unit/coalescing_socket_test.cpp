// The server's output buffer on a real loopback socket, without actors: an
// idle socket's frame leaves at once (no io_context turn), corked frames
// leave in one send, a peer that stops reading backs the frames up (pings
// dropped, room refused) and gets all of them in order once it reads again,
// and the end of the stream (FIN or close) comes after everything appended.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>

#include "coalescing_socket.hpp"

using namespace kullsync;
using kullsync::detail::coalescing_socket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct socket_pair : testing::Test {
  net::io_context ioc;
  tcp::socket peer{ioc};
  std::unique_ptr<coalescing_socket> out;
  std::atomic<uint64_t> sends{0};

  void SetUp() override {
    tcp::acceptor acceptor{ioc, tcp::endpoint{net::ip::make_address("127.0.0.1"), 0}};
    peer.connect(acceptor.local_endpoint());
    detail::io_socket accepted{ioc.get_executor()};
    acceptor.accept(accepted);
    accepted.non_blocking(true);
    out = std::make_unique<coalescing_socket>(std::move(accepted));
    out->count_sends_in(&sends);
  }

  /// A server's unmasked frame, as the peer reads it.
  static std::string frame(uint8_t opcode, const std::string& payload) {
    unsigned char head[ws::max_frame_header];
    auto n = ws::write_frame_header(head, opcode, payload.size(), false);
    return std::string(reinterpret_cast<const char*>(head), n) + payload;
  }

  /// What the peer reads until it has `n` bytes or the stream ends, running
  /// the io_context meanwhile (for sends left to the background); 5 s at most.
  std::string read_up_to(size_t n, bool* eof = nullptr) {
    peer.non_blocking(true);
    std::string got;
    char chunk[65536];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
      boost::system::error_code ec;
      auto k = peer.read_some(net::buffer(chunk, std::min(sizeof chunk, n - got.size())), ec);
      if (ec == net::error::would_block) {
        ioc.restart();
        ioc.run_for(std::chrono::milliseconds(2));
        continue;
      }
      if (ec) {
        if (eof != nullptr)
          *eof = ec == net::error::eof;
        break;
      }
      got.append(chunk, k);
    }
    return got;
  }
};

TEST_F(socket_pair, an_idle_sockets_frame_leaves_at_once) {
  ASSERT_TRUE(out->append_text_frame("hello"));
  // No handler is left to run: the kernel took the frame in append_frame.
  EXPECT_EQ(ioc.poll(), 0u);
  EXPECT_EQ(sends.load(), 1u);
  auto want = frame(ws::opcode::text, "hello");
  EXPECT_EQ(read_up_to(want.size()), want);
}

TEST_F(socket_pair, corked_frames_leave_in_one_send) {
  out->cork();
  ASSERT_TRUE(out->append_text_frame("a"));
  ASSERT_TRUE(out->append_frame(ws::opcode::ping, ""));
  ASSERT_TRUE(out->append_text_frame("b"));
  EXPECT_EQ(sends.load(), 0u);
  out->uncork();
  EXPECT_EQ(sends.load(), 1u);
  auto want = frame(ws::opcode::text, "a") + frame(ws::opcode::ping, "")
            + frame(ws::opcode::text, "b");
  EXPECT_EQ(read_up_to(want.size()), want);
}

TEST_F(socket_pair, a_peer_that_stops_reading_gets_everything_in_order_later) {
  int rooms = 0;
  out->on_room([&] { ++rooms; });
  // Fill the kernel's buffers and then ours, the peer reading nothing.
  std::string payload(1000, 'x');
  std::string want;
  size_t appended = 0;
  while (out->has_room()) {
    auto text = std::to_string(appended++) + payload;
    ASSERT_TRUE(out->append_text_frame(text));
    want += frame(ws::opcode::text, text);
  }
  // Far more than our buffer holds: the kernel took most of it in place,
  // and what it could not take waits behind a background send.
  EXPECT_GT(want.size(), 2 * coalescing_socket::max_buffered);
  EXPECT_FALSE(out->append_frame(ws::opcode::ping, "")) << "a ping without room is dropped";
  out->shutdown_when_sent();

  // The peer reads it all; the rest left in the background, then the FIN.
  bool eof = false;
  auto got = read_up_to(want.size() + 1, &eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want);
  EXPECT_GE(rooms, 1) << "the owner heard of room after the background send";
}

// An owner keeps in its own queue what finds no room and moves it on
// on_room, as a WebSocket connection does. Once the peer reads again, a
// send the kernel takes whole makes room with no completion to come: the
// owner must hear of it, or its queue waits for ever.
TEST_F(socket_pair, an_owners_queue_drains_once_the_peer_reads_again) {
  std::deque<std::string> queued;
  auto move_queued = [&] {
    while (!queued.empty() && out->has_room()) {
      ASSERT_TRUE(out->append_text_frame(queued.front()));
      queued.pop_front();
    }
  };
  out->on_room(move_queued);
  std::string payload(8000, 'x'); // a few frames fill our buffer
  std::string want;
  for (int i = 0; i < 1000; ++i) {
    auto text = std::to_string(i) + payload;
    want += frame(ws::opcode::text, text);
    if (queued.empty() && out->has_room())
      ASSERT_TRUE(out->append_text_frame(text));
    else
      queued.push_back(std::move(text));
  }
  ASSERT_FALSE(queued.empty()) << "the peer's buffers took everything: nothing waited";
  auto got = read_up_to(want.size());
  EXPECT_EQ(got.size(), want.size()) << queued.size() << " frames still wait for room";
  EXPECT_TRUE(got == want);
}

TEST_F(socket_pair, close_follows_what_was_sent_and_nothing_follows_a_close) {
  ASSERT_TRUE(out->append_text_frame("last"));
  out->append_close(1000, "bye");
  EXPECT_FALSE(out->append_text_frame("late"));
  out->close_when_sent();
  auto want = frame(ws::opcode::text, "last") + frame(ws::opcode::close, std::string("\x03\xe8", 2) + "bye");
  bool eof = false;
  EXPECT_EQ(read_up_to(want.size() + 1, &eof), want);
  EXPECT_TRUE(eof);
}

TEST_F(socket_pair, a_peer_gone_fails_the_socket_without_a_crash) {
  peer.set_option(net::socket_base::linger(true, 0));
  peer.close(); // RST
  // The first send may still be taken; an error comes back from a later one.
  for (int i = 0; i < 100 && out->append_text_frame("into the void"); ++i) {
    ioc.run_for(std::chrono::milliseconds(1));
    ioc.restart();
  }
  EXPECT_FALSE(out->append_text_frame("after the error"));
}

} // namespace

// The server's socket writes on real loopback sockets: frames sent before the
// handshake completes are held, then leave in order, in fewer sends than
// frames, before the close frame; every RFC 6455 length encoding arrives
// intact; a lone frame on an idle socket leaves at once; accepted sockets
// have Nagle's algorithm off.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_server.hpp"
#include "kullsync/transports/beast_transport.hpp"
#include "threaded_fixture.hpp"

using namespace kullsync;
using namespace std::chrono_literals;

namespace {

transport_listener_actor::behavior_type deaf_listener() {
  return {
    [](opened_atom, uint64_t, const std::string&) {},
    [](frame_atom, uint64_t, const frame_batch&) {},
    [](closed_atom, uint64_t, uint16_t, const std::string&) {},
  };
}

/// Accepts every socket: sends it `frames` while its handshake is still
/// pending, attaches (which completes the handshake) and then, if
/// `close_after`, closes it with 1000.
acceptor_actor::behavior_type burst_acceptor(acceptor_actor::pointer self,
                                             std::vector<std::string> frames,
                                             bool close_after) {
  return {
    [=](accept_atom, accepted_link_actor socket, const std::string&, const header_list&, const std::string&) {
      for (auto& f : frames)
        self->send(socket, send_atom::value, make_shared_frame(f));
      self->send(socket, attach_atom::value,
                 self->home_system().spawn(deaf_listener), uint64_t{1}, std::string{});
      if (close_after)
        self->send(socket, close_atom::value, close_code::normal, std::string{"done"});
    },
  };
}

/// Attaches every socket and sends it one frame once it is open: the socket
/// is idle when the frame arrives.
acceptor_actor::behavior_type lone_frame_acceptor(acceptor_actor::pointer self) {
  return {
    [=](accept_atom, accepted_link_actor socket, const std::string&, const header_list&, const std::string&) {
      auto on_open = [socket]() -> transport_listener_actor::behavior_type {
        return {
          [socket](opened_atom, uint64_t, const std::string&) {
            caf::anon_send(socket, send_atom::value, make_shared_frame("frame-0"));
          },
          [](frame_atom, uint64_t, const frame_batch&) {},
          [](closed_atom, uint64_t, uint16_t, const std::string&) {},
        };
      };
      self->send(socket, attach_atom::value, self->home_system().spawn(on_open),
                 uint64_t{1}, std::string{});
    },
  };
}

/// TCP_NODELAY of every connected socket of this process whose local port is
/// `port` (the server's accepted sockets; the client's port is ephemeral).
std::vector<int> nodelay_of_accepted(uint16_t port) {
  std::vector<int> flags;
  auto* dir = opendir("/proc/self/fd");
  if (dir == nullptr)
    return flags;
  while (auto* e = readdir(dir)) {
    int fd = std::atoi(e->d_name);
    sockaddr_in local{}, peer{};
    socklen_t n = sizeof(local), m = sizeof(peer);
    if (fd <= 2 || getsockname(fd, reinterpret_cast<sockaddr*>(&local), &n) != 0
        || local.sin_family != AF_INET || ntohs(local.sin_port) != port
        || getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &m) != 0)
      continue;
    int on = 0;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0)
      flags.push_back(on);
  }
  closedir(dir);
  return flags;
}

http_handler_actor::behavior_type no_http(http_handler_actor::pointer) {
  return {
    [](http_atom, const http_exchange& ex) { ex.respond({404, "{}", "application/json"}); },
  };
}

/// What a client transport reported to the test.
struct link_events {
  struct closing {
    uint64_t tag;
    uint16_t code;
    std::string reason;
  };
  std::vector<std::string> frames;
  std::vector<closing> closes;
};

class socket_writes_test : public test::threaded_system_test {
protected:
  uint16_t start(acceptor_actor acceptor) {
    beast_server_options bo;
    bo.host = "127.0.0.1";
    bo.port = 0;
    bo.io_threads = io_threads_;
    server_ = std::make_unique<beast_server>(sys_, bo, std::move(acceptor),
                                             sys_.spawn(no_http));
    return server_->start();
  }

  /// "frame-0", "frame-1", ...
  uint16_t start(int burst, bool close_after) {
    std::vector<std::string> frames;
    for (int i = 0; i < burst; ++i)
      frames.push_back("frame-" + std::to_string(i));
    return start(sys_.spawn(burst_acceptor, std::move(frames), close_after));
  }

  /// Dials the server with a client transport reporting to `self` (tag 1).
  dialer_actor dial(caf::scoped_actor& self, uint16_t port) {
    auto client = spawn_beast_transport(sys_, {});
    self->send(client, connect_atom::value, caf::actor_cast<transport_listener_actor>(self),
               uint64_t{1}, "ws://127.0.0.1:" + std::to_string(port) + "/ws",
               header_list{});
    return client;
  }

  /// Receives the events of `client`'s link until `enough(events)` or 10 s
  /// of silence, giving the frames back as credit.
  template <class Pred>
  link_events collect(caf::scoped_actor& self, const dialer_actor& client,
                      Pred enough) {
    link_events ev;
    bool done = false;
    while (!done) {
      self->receive(
        [](opened_atom, uint64_t, std::string&) {},
        [&](frame_atom, uint64_t tag, frame_batch& frames) {
          for (auto& text : frames)
            ev.frames.push_back(std::move(text));
          done = enough(ev);
          self->send(client, credit_atom::value, tag, static_cast<uint32_t>(frames.size()));
        },
        [&](closed_atom, uint64_t tag, uint16_t code, std::string& reason) {
          ev.closes.push_back({tag, code, std::move(reason)});
          done = enough(ev);
        },
        caf::after(10s) >> [&] { done = true; });
    }
    return ev;
  }

  /// Dials `clients` sockets to a server that sends each a burst and closes;
  /// each must get its frames in order, then the close.
  void expect_bursts_in_order(int clients, int burst) {
    auto port = start(burst, true);
    std::vector<std::unique_ptr<caf::scoped_actor>> selves;
    std::vector<dialer_actor> links;
    for (int c = 0; c < clients; ++c) {
      selves.push_back(std::make_unique<caf::scoped_actor>(sys_));
      links.push_back(dial(*selves.back(), port));
    }
    for (int c = 0; c < clients; ++c) {
      auto ev = collect(*selves[c], links[c], [](const link_events& e) { return !e.closes.empty(); });
      ASSERT_EQ(ev.frames.size(), static_cast<size_t>(burst)) << "client " << c;
      for (int i = 0; i < burst; ++i)
        ASSERT_EQ(ev.frames[i], "frame-" + std::to_string(i)) << "client " << c;
      ASSERT_EQ(ev.closes.size(), 1u);
      EXPECT_EQ(ev.closes[0].code, close_code::normal);
      (*selves[c])->send_exit(links[c], caf::exit_reason::user_shutdown);
    }
    auto st = server_->stats();
    EXPECT_EQ(st.frames_written, static_cast<uint64_t>(clients * burst));
    EXPECT_LT(st.socket_sends * 2, st.frames_written)
      << st.socket_sends << " sends for " << st.frames_written << " frames";
    server_->stop(1s);
  }

  struct lone_link {
    uint16_t port;
    dialer_actor client;
    link_events ev; // up to the frame (or a close)
  };

  /// A link to a server that sends one frame once the socket is open.
  lone_link lone_frame_link(caf::scoped_actor& self) {
    auto port = start(sys_.spawn(lone_frame_acceptor));
    auto client = dial(self, port);
    return {port, client, collect(self, client, [](const link_events& e) {
              return !e.frames.empty() || !e.closes.empty();
            })};
  }

  size_t io_threads_ = 1;
  std::unique_ptr<beast_server> server_;
};

} // namespace

TEST_F(socket_writes_test, a_burst_leaves_in_order_in_fewer_sends_before_the_close) {
  constexpr int burst = 2000;
  auto port = start(burst, true);
  caf::scoped_actor self{sys_};
  auto client = dial(self, port);
  auto ev = collect(self, client, [](const link_events& e) { return !e.closes.empty(); });
  ASSERT_EQ(ev.frames.size(), static_cast<size_t>(burst));
  for (int i = 0; i < burst; ++i)
    ASSERT_EQ(ev.frames[i], "frame-" + std::to_string(i));
  ASSERT_EQ(ev.closes.size(), 1u);
  EXPECT_EQ(ev.closes[0].code, close_code::normal);
  EXPECT_EQ(ev.closes[0].reason, "done");
  auto st = server_->stats();
  EXPECT_EQ(st.frames_written, static_cast<uint64_t>(burst));
  // The handshake response is not counted; the close frame is one send at most.
  EXPECT_LT(st.socket_sends * 2, st.frames_written)
    << st.socket_sends << " sends for " << st.frames_written << " frames";
  self->send_exit(client, caf::exit_reason::user_shutdown);
  server_->stop(1s);
}

// With one io thread, frames for every socket share the server's outbox:
// each socket still gets exactly its own frames, in order.
TEST_F(socket_writes_test, bursts_to_several_sockets_each_arrive_in_order) {
  expect_bursts_in_order(4, 1000);
}

// With several io threads each serves its own sockets, with its own outbox.
TEST_F(socket_writes_test, with_two_io_threads_bursts_still_arrive_in_order) {
  io_threads_ = 2;
  expect_bursts_in_order(4, 1000);
}

// Data frames are framed by kullsync itself (not by Beast's write): every
// length encoding of RFC 6455 (7-bit, 16-bit, 64-bit) reaches Beast's reader
// intact, each followed by the next.
TEST_F(socket_writes_test, frames_of_every_length_encoding_arrive_intact) {
  std::vector<std::string> frames;
  for (size_t n : {0, 1, 125, 126, 127, 65535, 65536, 200000})
    frames.push_back(std::string(n, static_cast<char>('a' + n % 26)));
  auto port = start(sys_.spawn(burst_acceptor, frames, true));
  caf::scoped_actor self{sys_};
  auto client = dial(self, port);
  auto ev = collect(self, client, [](const link_events& e) { return !e.closes.empty(); });
  ASSERT_EQ(ev.frames.size(), frames.size());
  for (size_t i = 0; i < frames.size(); ++i)
    EXPECT_EQ(ev.frames[i], frames[i]) << "frame " << i << " of " << frames[i].size() << " bytes";
  ASSERT_EQ(ev.closes.size(), 1u);
  EXPECT_EQ(ev.closes[0].code, close_code::normal);
  self->send_exit(client, caf::exit_reason::user_shutdown);
  server_->stop(1s);
}

TEST_F(socket_writes_test, a_lone_frame_on_an_idle_socket_leaves_at_once) {
  caf::scoped_actor self{sys_};
  // Nothing else is ever sent: a frame held back by the cork never comes.
  auto [port, client, ev] = lone_frame_link(self);
  ASSERT_EQ(ev.frames.size(), 1u);
  EXPECT_EQ(ev.frames[0], "frame-0");
  // One send for the frame (Beast writes the handshake's 101 response itself).
  EXPECT_EQ(server_->stats().socket_sends, 1u);
  self->send_exit(client, caf::exit_reason::user_shutdown);
  server_->stop(1s);
}

// kullsync gathers frames itself; with Nagle's algorithm a small send would
// wait for the previous one's ACK, which the client delays by up to 40 ms.
TEST_F(socket_writes_test, accepted_sockets_have_nagle_off) {
  caf::scoped_actor self{sys_};
  auto [port, client, ev] = lone_frame_link(self);
  ASSERT_EQ(ev.frames.size(), 1u);
  auto flags = nodelay_of_accepted(port);
  ASSERT_EQ(flags.size(), 1u) << "the accepted socket was not found";
  EXPECT_NE(flags[0], 0) << "TCP_NODELAY is off on the accepted socket";
  self->send_exit(client, caf::exit_reason::user_shutdown);
  server_->stop(1s);
}


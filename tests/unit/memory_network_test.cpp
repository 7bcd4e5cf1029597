// The memory network keeps the transport contract as a socket does: the
// subprotocol a server attaches with reaches the client only if offered, and
// a listener gets no more frames than its credit (flow::window) allows, and a
// slow link delivers what it carried before its close, as TCP does.
#include <gtest/gtest.h>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/transports/memory_network.hpp"
#include "sim_fixture.hpp"

using namespace kullsync;
using namespace kullsync::test;

namespace {

struct link_log {
  std::vector<std::string> opened; // the subprotocol of each open
  std::vector<std::string> frames;
  std::vector<uint16_t> closes;
  accepted_link_actor server_end;
};

/// A listener that records and never gives credit back.
transport_listener_actor spawn_listener(caf::actor_system& sys,
                                        std::shared_ptr<link_log> log) {
  return sys.spawn([log]() -> transport_listener_actor::behavior_type {
    return {
      [=](opened_atom, uint64_t, const std::string& p) { log->opened.push_back(p); },
      [=](frame_atom, uint64_t, const frame_batch& xs) {
        log->frames.insert(log->frames.end(), xs.begin(), xs.end());
      },
      [=](closed_atom, uint64_t, uint16_t code, const std::string&) {
        log->closes.push_back(code);
      },
    };
  });
}

/// Accepts every link and attaches with subprotocol "kull.v2".
acceptor_actor spawn_acceptor(caf::actor_system& sys, std::shared_ptr<link_log> log,
                              transport_listener_actor server_side) {
  return sys.spawn([=]() -> acceptor_actor::behavior_type {
    return {[=](accept_atom, accepted_link_actor t, const std::string&, const header_list&, const std::string&) {
      log->server_end = t;
      caf::anon_send(t, attach_atom::value, server_side, uint64_t{9},
                     std::string{"kull.v2"});
    }};
  });
}

// The roles are separate protocols: the compiler refuses a dial sent to an
// accepted link and an attach sent to a dialer, in every implementation.
template <class Handle, class... Ts>
constexpr bool accepts = caf::response_type_unbox<
  typename Handle::signatures, caf::detail::type_list<Ts...>>::valid;
static_assert(accepts<dialer_actor, connect_atom, transport_listener_actor, uint64_t,
                      std::string, header_list>);
static_assert(!accepts<accepted_link_actor, connect_atom, transport_listener_actor,
                       uint64_t, std::string, header_list>);
static_assert(accepts<accepted_link_actor, attach_atom, transport_listener_actor,
                      uint64_t, std::string>);
static_assert(!accepts<dialer_actor, attach_atom, transport_listener_actor, uint64_t,
                       std::string>);
static_assert(!accepts<link_actor, attach_atom, transport_listener_actor, uint64_t,
                       std::string>);
// Whoever holds either end may use it as a link.
static_assert(std::is_convertible<dialer_actor, link_actor>::value);
static_assert(std::is_convertible<accepted_link_actor, link_actor>::value);

struct network_fixture : ::testing::Test {
  sim_system sim;
  memory_network_actor net = spawn_memory_network(sim.sys(), 1);
  std::shared_ptr<link_log> client = std::make_shared<link_log>();
  std::shared_ptr<link_log> server = std::make_shared<link_log>();
  transport_listener_actor client_listener = spawn_listener(sim.sys(), client);
  transport_listener_actor server_listener = spawn_listener(sim.sys(), server);
  dialer_actor end = spawn_memory_transport(sim.sys(), net);

  network_fixture() {
    caf::anon_send(net, listen_atom::value, std::string{"ws://net.test/ws"},
                   spawn_acceptor(sim.sys(), server, server_listener));
    sim.run();
  }
  ~network_fixture() override {
    for (auto h : {caf::actor_cast<caf::actor>(net), caf::actor_cast<caf::actor>(end),
                   caf::actor_cast<caf::actor>(client_listener),
                   caf::actor_cast<caf::actor>(server_listener)})
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    if (server->server_end)
      caf::anon_send_exit(server->server_end, caf::exit_reason::user_shutdown);
    sim.run();
  }

  void dial(header_list headers) {
    caf::anon_send(end, connect_atom::value, client_listener, uint64_t{1},
                   std::string{"ws://net.test/ws?token=u:d"}, std::move(headers));
    sim.run();
  }
};

} // namespace

TEST_F(network_fixture, the_attached_subprotocol_reaches_a_client_that_offered_it) {
  dial({{"Sec-WebSocket-Protocol", "other, kull.v2"}});
  ASSERT_EQ(client->opened.size(), 1u);
  EXPECT_EQ(client->opened[0], "kull.v2");
  ASSERT_EQ(server->opened.size(), 1u);
  EXPECT_EQ(server->opened[0], "kull.v2");
}

TEST_F(network_fixture, a_subprotocol_nobody_offered_is_not_agreed) {
  dial({});
  ASSERT_EQ(client->opened.size(), 1u);
  EXPECT_EQ(client->opened[0], "");
}

TEST_F(network_fixture, a_listener_gets_no_more_frames_than_its_credit) {
  dial({});
  ASSERT_TRUE(server->server_end);
  for (int i = 0; i < 1000; ++i)
    caf::anon_send(server->server_end, send_atom::value, "f" + std::to_string(i));
  sim.run();
  ASSERT_EQ(client->frames.size(), flow::window);
  caf::anon_send(end, credit_atom::value, uint64_t{1}, uint32_t{100});
  sim.run();
  EXPECT_EQ(client->frames.size(), flow::window + 100);
  // Credit for a link this end had before changes nothing.
  caf::anon_send(end, credit_atom::value, uint64_t{0}, uint32_t{100});
  sim.run();
  EXPECT_EQ(client->frames.size(), flow::window + 100);
  // The frames a closed link carried come before its end, in order.
  caf::anon_send(server->server_end, close_atom::value, close_code::normal, std::string{});
  sim.run();
  ASSERT_EQ(client->frames.size(), 1000u);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(client->frames[i], "f" + std::to_string(i));
  EXPECT_EQ(client->closes, std::vector<uint16_t>{close_code::normal});
}

TEST_F(network_fixture, a_slow_link_delivers_what_it_carried_before_its_close) {
  dial({});
  ASSERT_TRUE(server->server_end);
  link_faults slow;
  slow.min_delay = std::chrono::milliseconds{20};
  slow.max_delay = std::chrono::milliseconds{80};
  caf::anon_send(caf::actor_cast<sim_network_actor>(net), faults_atom::value, slow);
  sim.run();
  for (int i = 0; i < 10; ++i)
    caf::anon_send(server->server_end, send_atom::value, "f" + std::to_string(i));
  caf::anon_send(server->server_end, close_atom::value, close_code::normal, std::string{});
  sim.run();
  EXPECT_TRUE(client->closes.empty()) << "the close overtook the frames in flight";
  sim.advance(std::chrono::seconds{1});
  ASSERT_EQ(client->frames.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(client->frames[i], "f" + std::to_string(i));
  EXPECT_EQ(client->closes, std::vector<uint16_t>{close_code::normal});
  // What the client sent meanwhile reaches no one: the server end has closed.
  caf::anon_send(link_actor{end}, send_atom::value, std::string{"late"});
  sim.advance(std::chrono::seconds{1});
  EXPECT_TRUE(server->frames.empty());
}

TEST_F(network_fixture, a_half_open_cut_loses_a_close_still_in_flight) {
  dial({});
  ASSERT_TRUE(server->server_end);
  link_faults slow;
  slow.min_delay = std::chrono::milliseconds{50};
  caf::anon_send(caf::actor_cast<sim_network_actor>(net), faults_atom::value, slow);
  sim.run();
  caf::anon_send(server->server_end, send_atom::value, std::string{"f"});
  caf::anon_send(server->server_end, close_atom::value, close_code::normal, std::string{});
  sim.run();
  caf::anon_send(caf::actor_cast<sim_network_actor>(net), cut_atom::value, cut_mode::half_open);
  sim.run();
  sim.advance(std::chrono::seconds{1});
  EXPECT_TRUE(client->frames.empty());
  EXPECT_TRUE(client->closes.empty()) << "a half-open link delivered its close";
}

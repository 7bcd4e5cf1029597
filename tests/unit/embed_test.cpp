// A host application embeds the engine in its own actor system (threaded
// scheduler) next to its own actors, with one call.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/client/caf_types.hpp"
#include "kullsync/client/engine.hpp"
#include "scripted_peer.hpp"

using namespace kullsync;
using namespace std::chrono_literals;

namespace {

using total_atom = caf::atom_constant<caf::atom("total")>;

/// The host's own actor: a dashboard that counts credit changes it sees and
/// answers its own query, next to the engine's state topic.
using dashboard_actor = caf::typed_actor<
  caf::reacts_to<state_atom, sync_state>,
  caf::replies_to<total_atom>::with<int64_t, bool>>;

struct dashboard_state {
  int64_t credits = -1;
  bool connected = false;
};

dashboard_actor::behavior_type
dashboard(dashboard_actor::stateful_pointer<dashboard_state> self) {
  return {
    [=](state_atom, const sync_state& s) {
      self->state.credits = s.credits.value_or(-1);
      self->state.connected = s.connection.state == connection_state::connected;
    },
    [=](total_atom) {
      return std::make_tuple(self->state.credits, self->state.connected);
    },
  };
}

/// The host's actor system configuration, with the engine's types.
struct host_config {
  host_config() {
    add_client_types(cfg);
    cfg.set("scheduler.max-threads", size_t{2});
  }
  caf::actor_system_config cfg;
};

/// The host: its own actor system (threaded) and a scripted peer on a
/// memory network, which the engines it spawns dial.
struct host : host_config {
  ~host() {
    caf::anon_send_exit(peer, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
  }
  client_engine engine() {
    client_config cc;
    cc.connection.url = "ws://host.test/ws";
    cc.connection.user_id = "u9";
    cc.connection.device_id = "embedded";
    return spawn_client(sys, cc, spawn_memory_transport(sys, net));
  }
  caf::actor_system sys{cfg};
  memory_network_actor net = spawn_memory_network(sys, 7);
  test::peer_actor peer = test::spawn_scripted_peer(sys, net, {"ws://host.test/ws"}, 0);
};

} // namespace

TEST(embedding, engine_runs_inside_a_host_actor_system) {
  host h;
  auto& sys = h.sys;
  auto& peer = h.peer;
  auto board = sys.spawn(dashboard);
  auto engine = h.engine();
  engine.subscribe(caf::actor_cast<state_subscriber_actor>(board));
  engine.connect();

  caf::scoped_actor self{sys};
  auto poll = [&](auto pred) {
    for (int i = 0; i < 500; ++i) {
      bool ok = false;
      self->request(board, caf::infinite, total_atom::value)
        .receive([&](int64_t credits, bool connected) { ok = pred(credits, connected); },
                 [&](caf::error&) {});
      if (ok)
        return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  ASSERT_TRUE(poll([](int64_t, bool connected) { return connected; }));
  auto m = msg::make_server_message(msg::server_type::credit_update,
                                    msg::credit_update{"u9", 4200, 200, "top-up"},
                                    1, "server", "u9");
  caf::anon_send(peer, publish_atom::value, std::string{"u9"}, m);
  EXPECT_TRUE(poll([](int64_t credits, bool) { return credits == 4200; }));

  engine.stop();
  caf::anon_send_exit(board, caf::exit_reason::user_shutdown);
}

// await_stop() returns after the last callback of the engine's adapters has
// returned, the "disconnected" status among them: an app may destroy what
// its callbacks use right after it. (The adapters are actors of their own,
// whose mailboxes held callbacks still to run.)
TEST(embedding, no_callback_runs_after_await_stop) {
  host h;
  auto& sys = h.sys;
  auto engine = h.engine();
  std::atomic<bool> torn_down{false}, late{false}, connected{false}, saw_disconnected{false};
  std::atomic<int> markers{0};
  // Slow callbacks, so that the adapters have a backlog when the engine
  // stops. A "marker" the test sends itself afterwards is queued behind
  // whatever backlog an adapter still had: once both came, nothing of the
  // engine's is left to run.
  auto states = make_state_callback(sys, [&](const sync_state& s) {
    if (s.connection.url == "marker") {
      ++markers;
      return;
    }
    std::this_thread::sleep_for(20ms);
    late = late || torn_down;
    connected = connected || s.connection.state == connection_state::connected;
  });
  auto statuses = make_status_callback(sys, [&](const connection_status& s) {
    if (s.url == "marker") {
      ++markers;
      return;
    }
    std::this_thread::sleep_for(20ms);
    late = late || torn_down;
    saw_disconnected = s.state == connection_state::disconnected;
  });
  engine.subscribe(states);
  engine.subscribe(statuses);
  engine.connect();
  for (int i = 0; i < 500 && !connected; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(connected);
  for (int i = 0; i < 5; ++i) {
    msg::shoot_progress p;
    p.shoot_id = "s" + std::to_string(i);
    p.status = msg::shoot_status::processing;
    p.total_count = 10;
    engine.send_progress(p);
  }
  engine.stop();
  engine.await_stop(sys);
  torn_down = true;
  EXPECT_TRUE(saw_disconnected) << "the last status seen before await_stop returned";
  sync_state marker_state;
  marker_state.connection.url = "marker";
  connection_status marker_status;
  marker_status.url = "marker";
  caf::anon_send(states, state_atom::value, marker_state);
  caf::anon_send(statuses, status_atom::value, marker_status);
  for (int i = 0; i < 1000 && markers < 2; ++i)
    std::this_thread::sleep_for(10ms); // polls for the markers, with a deadline
  ASSERT_EQ(markers.load(), 2) << "the markers never came back";
  EXPECT_FALSE(late) << "a callback ran after await_stop returned";
}

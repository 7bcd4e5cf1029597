// Built against an installed kullsync, linking the simulation kit
// (kullsync::testing): a network that refuses every dial, counted by the
// network, and an engine with a stream rule broken on purpose; then an
// engine and the real server in the kit's deterministic system, live after
// one second of virtual time.
#include <chrono>
#include <cstdio>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <kullsync/client/caf_types.hpp>
#include <kullsync/client/engine.hpp>
#include <kullsync/testing/sim_network.hpp>
#include <kullsync/testing/mutated_client.hpp>
#include <kullsync/testing/sim_server.hpp>
#include <kullsync/testing/sim_system.hpp>

#include "reconnecting.hpp"

/// The kit's deterministic system: an engine and the real server on a
/// memory network, connected (v2) after one second of virtual time.
bool live_in_virtual_time() {
  kullsync::sim::sim_system sim;
  auto net = kullsync::sim::spawn_sim_network(sim.sys(), 1);
  bool live = false;
  {
    kullsync::sim::sim_server server{sim, net, "ws://sim.test/ws"};
    kullsync::client_config cc;
    cc.connection.url = "ws://sim.test/ws";
    cc.connection.user_id = "u";
    cc.connection.device_id = "d";
    kullsync::sim::pin(cc, 1);
    auto engine = kullsync::spawn_client(sim.sys(), cc,
                                         kullsync::spawn_memory_transport(sim.sys(), net));
    engine.connect();
    sim.advance(std::chrono::seconds{1});
    auto st = sim.ask<kullsync::sync_state>(engine.coordinator, kullsync::get_atom::value);
    live = st.connection.state == kullsync::connection_state::connected
           && st.connection.protocol == "kull.v2";
    engine.stop();
    sim.advance(cc.connection.stop_timeout);
  }
  caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
  sim.run();
  return live;
}

int main() {
  if (!live_in_virtual_time()) {
    std::puts("simulation: the engine is not live on the simulated server");
    return 1;
  }
  caf::actor_system_config cfg;
  kullsync::add_client_types(cfg);
  kullsync::sim::add_sim_types(cfg);
  caf::actor_system sys{cfg};
  auto net = kullsync::sim::spawn_sim_network(sys, 7);
  caf::anon_send(net, kullsync::refuse_atom::value, true);
  kullsync::client_config cc;
  cc.connection.url = "ws://sim.test/ws";
  cc.connection.user_id = "u";
  cc.connection.device_id = "d";
  auto engine = kullsync::sim::spawn_mutated_client(
    sys, cc, kullsync::sim::stream_mutation::ignore_gaps,
    kullsync::spawn_memory_transport(sys, net));
  // The engine's status, not a poll: reconnecting once its dial failed.
  bool ok = connects_then_reconnects(sys, engine, std::chrono::seconds{10});
  caf::scoped_actor self{sys};
  kullsync::network_stats st;
  if (ok)
    self->request(net, std::chrono::seconds{10}, kullsync::stats_atom::value)
      .receive([&](const kullsync::network_stats& s) { st = s; }, [&](caf::error&) {});
  engine.stop();
  self->send_exit(net, caf::exit_reason::user_shutdown);
  if (ok && st.refused >= 1 && st.dials >= 1) {
    std::puts("simulation: the network refused the engine's dial as told");
    return 0;
  }
  std::printf("simulation: no refused dial seen (engine reconnecting: %d, dials %llu, "
              "refused %llu)\n", ok, static_cast<unsigned long long>(st.dials),
              static_cast<unsigned long long>(st.refused));
  return 1;
}

// Built against an installed kullsync, linking the simulation kit
// (kullsync::testing): a network that refuses every dial, counted by the
// network, and an engine with a stream rule broken on purpose.
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

#include "reconnecting.hpp"

int main() {
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

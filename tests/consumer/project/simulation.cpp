// Built against an installed kullsync, linking the simulation kit
// (kullsync::testing): a network that refuses every dial, counted by the
// network, and an engine with a stream rule broken on purpose.
#include <chrono>
#include <cstdio>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <kullsync/client/caf_types.hpp>
#include <kullsync/testing/sim_network.hpp>
#include <kullsync/testing/stream_mutation.hpp>

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
  engine.connect();
  caf::scoped_actor self{sys};
  for (int i = 0; i < 200; ++i) {
    kullsync::network_stats st;
    self->request(net, caf::infinite, kullsync::stats_atom::value)
      .receive([&](const kullsync::network_stats& s) { st = s; }, [&](caf::error&) {});
    if (st.refused >= 1 && st.dials >= 1) {
      std::puts("simulation: the network refused the engine's dial as told");
      engine.stop();
      self->send_exit(net, caf::exit_reason::user_shutdown);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::puts("simulation: the network never saw a refused dial");
  return 1;
}

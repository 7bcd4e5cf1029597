// Built against an installed kullsync: spawns the engine over the memory
// transport, with nothing listening, and checks that it goes to reconnecting.
#include <chrono>
#include <cstdio>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <kullsync/client/caf_types.hpp>
#include <kullsync/client/engine.hpp>
#include <kullsync/transports/memory_network.hpp>

int main() {
  caf::actor_system_config cfg;
  kullsync::add_client_types(cfg);
  caf::actor_system sys{cfg};
  auto net = kullsync::spawn_memory_network(sys, 1);
  kullsync::client_config cc;
  cc.connection.url = "ws://nobody.test/ws";
  cc.connection.user_id = "u";
  cc.connection.device_id = "d";
  auto engine = kullsync::spawn_client(sys, cc, kullsync::spawn_memory_transport(sys, net));
  engine.connect();
  caf::scoped_actor self{sys};
  for (int i = 0; i < 200; ++i) {
    kullsync::connection_state st = kullsync::connection_state::disconnected;
    self->request(engine.connection, caf::infinite, kullsync::get_atom::value)
      .receive([&](const kullsync::connection_status& s) { st = s.state; },
               [&](caf::error&) {});
    if (st == kullsync::connection_state::reconnecting) {
      std::puts("consumer: engine reconnecting as expected");
      engine.stop();
      self->send_exit(net, caf::exit_reason::user_shutdown);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::puts("consumer: engine never tried to reconnect");
  return 1;
}

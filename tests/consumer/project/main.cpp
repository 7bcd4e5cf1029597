// Built against an installed kullsync: spawns the engine over the memory
// transport, with nothing listening, and checks that it goes to reconnecting.
#include <chrono>
#include <cstdio>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include <kullsync/client/caf_types.hpp>
#include <kullsync/client/engine.hpp>
#include <kullsync/transports/memory_network.hpp>

#include "reconnecting.hpp"

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
  // The engine's status, not a poll: reconnecting once its dial failed.
  bool ok = connects_then_reconnects(sys, engine, std::chrono::seconds{10});
  // The public handle answers too (a host asks it so).
  caf::scoped_actor self{sys};
  kullsync::connection_state st = kullsync::connection_state::disconnected;
  self->request(engine.connection, std::chrono::seconds{10}, kullsync::get_atom::value)
    .receive([&](const kullsync::connection_status& s) { st = s.state; }, [&](caf::error&) {});
  engine.stop();
  self->send_exit(net, caf::exit_reason::user_shutdown);
  if (ok && st != kullsync::connection_state::connected) {
    std::puts("consumer: engine reconnecting as expected");
    return 0;
  }
  std::puts("consumer: engine never tried to reconnect");
  return 1;
}

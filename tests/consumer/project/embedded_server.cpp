// Built against an installed kullsync: a host embeds the sync server (its
// actors only; sockets are the host's to bring) and asks its counters. It
// links kullsync::server and kullsync::broker, whose exported targets name
// libjwt and hiredis: the package's config must find both.
#include <cstdio>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <kullsync/server/server.hpp>

int main() {
  caf::actor_system_config cfg;
  kullsync::server::add_server_types(cfg);
  caf::actor_system sys{cfg};
  auto server = kullsync::server::spawn_sync_server(sys, {});
  auto stats = server.stats(sys);
  server.stop();
  if (!server.acceptor || kullsync::server::sockets_of(stats) != 0) {
    std::puts("embedded_server: the server did not start empty");
    return 1;
  }
  std::puts("embedded_server: started and stopped");
  return 0;
}

#pragma once

// Spawn functions of the server's actors, and the protocols they speak among
// themselves; private to actors/server.

#include "kullsync/common/clock.hpp"
#include "kullsync/server/server.hpp"

namespace kullsync::server {

using sweep_atom = caf::atom_constant<caf::atom("sweep")>;

/// A hub shard, plus its timers: the removal of a shoot it remembers, and
/// the sweep of streams and client ids past the history's lifetime.
using hub_impl = hub_actor::extend<
  caf::reacts_to<expire_atom, std::string, std::string, uint64_t>,
  caf::reacts_to<sweep_atom>>;

/// A hub shard whose streams' epochs start with `node_epoch`.
hub_actor spawn_hub(caf::actor_system& sys, const server_config& cfg,
                    wall_clock clock, std::string node_epoch);

/// Everything a session needs, shared by all sessions of a server.
struct session_env {
  server_config cfg;
  wall_clock clock;
  std::vector<hub_actor> hubs;
};

session_actor spawn_session(caf::actor_system& sys,
                            std::shared_ptr<const session_env> env,
                            transport_actor transport, std::string target,
                            header_list headers);

acceptor_actor spawn_acceptor(caf::actor_system& sys,
                              std::shared_ptr<const session_env> env);

http_handler_actor spawn_http_api(caf::actor_system& sys,
                                  std::shared_ptr<const session_env> env);

} // namespace kullsync::server

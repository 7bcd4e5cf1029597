#pragma once

// Spawn functions of the server's actors; private to actors/src/server.

#include "kullsync/client/config.hpp"
#include "kullsync/server/server.hpp"

namespace kullsync::server {

hub_actor spawn_hub(caf::actor_system& sys, const server_config& cfg,
                    wall_clock clock);

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

http_handler_actor spawn_publisher(caf::actor_system& sys,
                                   std::shared_ptr<const session_env> env);

} // namespace kullsync::server

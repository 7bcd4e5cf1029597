#include "kullsync/testing/mutated_client.hpp"

#include "spawn.hpp"

namespace kullsync::sim {

client_engine spawn_mutated_client(caf::actor_system& sys, const client_config& cfg,
                                   stream_mutation broken, dialer_actor transport,
                                   http_client_actor http, token_provider_actor tokens) {
  return spawn_engine(sys, cfg, broken, std::move(transport), std::move(http),
                      std::move(tokens));
}

} // namespace kullsync::sim

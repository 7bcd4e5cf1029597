#pragma once

/// The simulation kit (kullsync::testing): the client engine with one rule of
/// its v2 stream broken on purpose. Never for an app.

#include "kullsync/client/engine.hpp"
#include "kullsync/testing/stream_mutation.hpp"

namespace kullsync::sim {

/// spawn_client, with `broken` broken.
client_engine spawn_mutated_client(caf::actor_system& sys, const client_config& cfg,
                                   stream_mutation broken, dialer_actor transport,
                                   http_client_actor http = {},
                                   token_provider_actor tokens = {});

} // namespace kullsync::sim

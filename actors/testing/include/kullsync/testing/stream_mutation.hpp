#pragma once

/// The simulation kit (kullsync::testing): the client engine with one rule of
/// the v2 stream broken on purpose, so that a simulation can show that its
/// invariants catch the break. Never for an app.

#include <cstdint>

#include "kullsync/client/engine.hpp"

namespace kullsync::sim {

enum class stream_mutation : uint8_t {
  none,
  keep_duplicates,   // applies a message at or below the position
  ignore_gaps,       // applies a message that skips positions
  new_ids_on_resend, // resends the outbox under new ids
  ignore_snapshot,   // keeps its state when a SNAPSHOT replaces it
};

/// spawn_client, with `broken` broken.
client_engine spawn_mutated_client(caf::actor_system& sys, const client_config& cfg,
                                   stream_mutation broken, dialer_actor transport,
                                   http_client_actor http = {},
                                   token_provider_actor tokens = {});

} // namespace kullsync::sim

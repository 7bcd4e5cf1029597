#pragma once

/// Spawn functions of the client engine's actors. Most hosts want
/// engine.hpp's spawn_client, which wires them all together.

#include <caf/fwd.hpp>

#include "kullsync/client/config.hpp"
#include "kullsync/client/protocol.hpp"

namespace kullsync {

reconnect_policy_actor spawn_reconnect_policy(caf::actor_system& sys,
                                              reconnect_config cfg);

/// Pings through `conn` and reports a dead peer to it.
keepalive_actor spawn_keepalive(caf::actor_system& sys, keepalive_config cfg,
                                wall_clock clock, connection_actor conn);

subscribers_actor spawn_subscribers(caf::actor_system& sys);

coordinator_actor spawn_coordinator(caf::actor_system& sys,
                                    const client_config& cfg, wall_clock clock,
                                    subscribers_actor subs);

/// The connection spawns and links its reconnect policy and keepalive, and
/// drives `transport`; it is linked to the coordinator so that one exit
/// stops the engine.
connection_actor spawn_connection(caf::actor_system& sys,
                                  const client_config& cfg, wall_clock clock,
                                  transport_actor transport,
                                  coordinator_actor coord);

/// Epoch milliseconds now, per `clock` and the actor system's clock.
int64_t epoch_ms(caf::actor_system& sys, const wall_clock& clock);

/// A wall_clock anchored at the system's clock now; `start_ms` overrides the
/// epoch time of that instant (simulations pass a fixed one).
wall_clock make_wall_clock(caf::actor_system& sys,
                           std::optional<int64_t> start_ms = {});

} // namespace kullsync

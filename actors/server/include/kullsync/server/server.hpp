#pragma once

/// The sync server's actors, spawned together. Transport-agnostic: the Beast
/// listener (transports/beast_server.hpp) and the memory network both hand
/// accepted links to `acceptor` and HTTP requests to `http_api`.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "kullsync/server/auth.hpp"
#include "kullsync/server/history.hpp"
#include "kullsync/server/protocol.hpp"
#include "kullsync/transports/subprotocol.hpp"

namespace kullsync::server {

using namespace std::chrono_literals;

struct server_config {
  size_t shards = 0;                  // 0: one per hardware thread
  std::string admin_user = "admin";   // receives ADMIN_SESSION_UPDATE, PROVIDER_HEALTH
  size_t max_sockets_per_user = 64;   // more: closed with 1008
  caf::timespan shoot_linger = 5s;    // completed shoots stay this long in /state
  std::optional<int64_t> wall_start_ms; // simulations pin the epoch
  std::shared_ptr<authenticator> auth;  // default: legacy_authenticator
  /// v2: each user's stream keeps this much (total memory split over the
  /// shards); client message ids are remembered as long as the history.
  history_limits history;
  /// This node's epoch, the start of every stream's; empty: a random one.
  /// A restart with in-memory history must change it (simulations set it).
  std::string node_epoch;
};

/// Handles of a running server.
struct sync_server {
  acceptor_actor acceptor;
  http_handler_actor http_api; // /api/sync/*
  std::vector<hub_actor> hubs;

  /// Closes every socket with `code` (1001 on shutdown).
  void close_all(uint16_t code, const std::string& reason) const;
  /// Stops every actor of the server.
  void stop() const;
  /// Every hub's counters, summed (blocks: not from an actor).
  hub_stats stats(caf::actor_system& sys) const;
};

sync_server spawn_sync_server(caf::actor_system& sys, server_config cfg);

/// The shard that owns `user`.
const hub_actor& hub_for(const std::vector<hub_actor>& hubs,
                         const std::string& user);

} // namespace kullsync::server

namespace kullsync::server {

/// Registers the server's message types, including the wire and transport
/// types. Call on the config before creating the actor system.
void add_server_types(caf::actor_system_config& cfg);

} // namespace kullsync::server

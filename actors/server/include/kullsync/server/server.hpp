#pragma once

/// The sync server's actors, spawned together. Transport-agnostic: the Beast
/// listener (transports/beast_server.hpp) and the memory network both hand
/// accepted links to `acceptor` and HTTP requests to `http_api`.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "kullsync/server/auth.hpp"
#include "kullsync/server/broker.hpp"
#include "kullsync/server/counters.hpp"
#include "kullsync/server/hub_stats.hpp"
#include "kullsync/server/revocations.hpp"
#include "kullsync/transports/http.hpp"
#include "kullsync/transports/subprotocol.hpp"
#include "kullsync/transports/transport.hpp"

namespace kullsync::server {

/// What a user's stream keeps (v2), so that a device that was away can be
/// sent exactly what it missed.
struct history_limits {
  size_t size = 1000;          // messages kept per user (--history-size)
  int64_t ttl_ms = 600'000;    // how long one is kept (--history-ttl); client
                               // message ids and Idempotency-Keys answer as long
  size_t memory_bytes = 256u << 20; // all users of the node together
  /// A resume that would replay more is answered with a SNAPSHOT: one
  /// socket's queue holds 4096 frames (beast_server_options), and a replay
  /// beyond it would cut the socket as a slow consumer every time.
  size_t max_replay = 2000; // --max-replay
};

/// How long a client message's id or an Idempotency-Key answers with its
/// first position: as long as the history keeps messages (--history-ttl),
/// on a node alone (the stream core) and in a cluster (the Redis scripts).
inline int64_t dedup_window_ms(const history_limits& h) { return h.ttl_ms; }

struct server_config {
  size_t shards = 0;                  // 0: one per hardware thread
  std::string admin_user = "admin";   // receives ADMIN_SESSION_UPDATE, PROVIDER_HEALTH
  size_t max_sockets_per_user = 64;   // more: closed with 1008
  caf::timespan shoot_linger = std::chrono::seconds{5};    // completed shoots stay this long in /state
  /// What the server remembers per user is bounded: active shoots per user
  /// (past it the least recently updated goes), shoots that stop reporting,
  /// users with no device, and all users of the node together (past it the
  /// users idle longest go first).
  struct state_limits {
    size_t shoots_per_user = 1000;
    int64_t shoot_idle_ms = 3'600'000;
    int64_t user_idle_ms = 86'400'000;
    size_t memory_bytes = 256u << 20;
  } state;
  std::optional<int64_t> wall_start_ms; // simulations pin the epoch
  std::shared_ptr<authenticator> auth;  // default: legacy_authenticator
  /// Tokens an operator revoked (POST /api/sync/users/{id}/revoke), kept
  /// for the longest token lifetime the server accepts; made when null. A
  /// cluster's broker keeps it the same on every node.
  std::shared_ptr<revocation_list> revocations;
  int64_t max_token_lifetime_ms = 86'400'000; // --max-token-lifetime
  /// How often sockets whose token expired are closed (4003): one sweep
  /// for all of them.
  caf::timespan expiry_sweep = std::chrono::seconds{1};
  /// HTTP API keys: when any is set, every /api/sync/* request but GET
  /// status needs `Authorization: Bearer <key>` (else 401); so does GET
  /// /metrics. /healthz and /readyz never do.
  std::vector<std::string> api_keys;
  /// Adds the transport's metrics to a /metrics scrape (called on the HTTP
  /// API's thread; must only read atomics). Null: none.
  std::function<void(metrics::writer&)> transport_metrics;
  /// Whether the node is ready for traffic (GET /readyz); null: always.
  /// A node an operator drains (POST /api/sync/drain) is not, whatever
  /// this says.
  std::function<bool()> ready;
  /// Set while an operator drains the node (made when null; a node shares
  /// it with what describes it to the cluster).
  std::shared_ptr<std::atomic<bool>> draining;
  /// When the node started (epoch ms; 0: now) and what it counts (null:
  /// counters of its own).
  int64_t started_at_ms = 0;
  std::shared_ptr<server_counters> counters;
  /// Rate limits and caps; a rate of 0 turns its limit off.
  struct limits_config {
    double client_rate = 50;      // client messages per second per socket
    double client_burst = 100;    // saved up; past it: NACK rate_limited / dropped,
                                  // and close 4008 when a second brings more
                                  // refusals than the burst
    size_t sockets_per_ip = 1000; // concurrent; more: close 1008
    double upgrades_per_ip = 50;  // WebSocket upgrades per second per address
    double upgrade_burst = 200;   // more: close 4008
    double api_key_rate = 1000;   // HTTP requests per second per API key
    double api_key_burst = 2000;  // more: 429
  } limits;
  /// v2: each user's stream keeps this much (total memory split over the
  /// shards); client message ids are remembered as long as the history.
  history_limits history;
  /// This node's epoch, the start of every stream's; empty: a random one.
  /// A restart with in-memory history must change it (simulations set it).
  std::string node_epoch;
  /// A cluster: the broker that numbers, stores and fans out every user's
  /// stream for all nodes (null: this node alone, history in memory). Its
  /// requests have no timeout of their own (a timer each would cost more
  /// than the request): the broker fails what it cannot answer (the Redis
  /// broker within 3 probe intervals of a stuck or lost link).
  struct cluster_config {
    broker_actor broker;
    std::string node_id;              // names this node's messages
    std::string instance;             // node_id.node_epoch: set at start
    caf::timespan position_check = std::chrono::seconds{30}; // each followed stream's top is checked
    /// Where a user's stream is kept, for operators (the Redis instance's
    /// address); unset: in this node.
    std::function<std::string(const std::string& user)> store_of;
  } cluster;
};

/// Whether an operator revoked `who`'s token at `now_ms`: issued before its
/// user's revocation, or without an issue time. Only signed tokens can be
/// (an unsigned one, taken beside them in a migration, is revoked while its
/// user's revocation lasts). Sockets ask at connect, at REFRESH and when a
/// revocation changes; the state call asks before it answers.
bool token_revoked(const server_config& cfg, const identity& who, int64_t now_ms);

/// Whether the node takes traffic (GET /readyz, its description): `ready`
/// says so and no operator drains it.
bool node_ready(const server_config& cfg);

/// This node's name among the nodes (a restarted node is another one).
std::string node_instance(const std::string& node_id, const std::string& node_epoch);
/// 16 hex digits from the OS's entropy: a new one at every start.
std::string new_node_epoch();

/// What a node says of itself in GET /api/sync/nodes (a JSON object):
/// nodeId, version, sockets, users, startedAt, ready.
std::string node_description(const std::string& node_id, int64_t started_at_ms,
                             const server_counters& counters, bool ready);

/// What the server's actors share among themselves (private).
struct session_env;

/// Handles of a running server.
struct sync_server {
  acceptor_actor acceptor;     // hand it accepted links
  http_handler_actor http_api; // hand it /api/sync/* requests
  std::shared_ptr<server_counters> counters;
  /// The hubs, the token watch and what they share: the server's own.
  std::shared_ptr<const session_env> env;

  /// Closes every socket with `code` (1001 on shutdown) and waits (blocks:
  /// not from an actor) until every hub saw its sockets leave and the
  /// broker answered what that changed (presence), at most `timeout`;
  /// false if some hub did not get there in time. Blocks a thread: not in
  /// a simulation, whose clock stands still meanwhile (sim::sim_server has
  /// its own).
  bool close_all(caf::actor_system& sys, uint16_t code, const std::string& reason,
                 std::chrono::milliseconds timeout) const;
  /// Stops every actor of the server.
  void stop() const;
  /// Every hub's counters, summed (blocks: not from an actor, nor in a
  /// simulation: sim::sim_server has its own).
  hub_stats stats(caf::actor_system& sys) const;
};

sync_server spawn_sync_server(caf::actor_system& sys, server_config cfg);

} // namespace kullsync::server

namespace kullsync::server {

/// Registers the server's message types, including the wire and transport
/// types. Call on the config before creating the actor system.
void add_server_types(caf::actor_system_config& cfg);

} // namespace kullsync::server

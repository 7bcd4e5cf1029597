#pragma once

// Spawn functions of the server's actors, and the protocols they speak among
// themselves; private to actors/server.

#include "kullsync/common/clock.hpp"
#include "kullsync/common/log_throttle.hpp"
#include "kullsync/log.hpp"
#include "kullsync/server/broker.hpp"
#include "kullsync/server/server.hpp"
#include "hub_protocol.hpp"

namespace kullsync::server {

using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using refollow_atom = caf::atom_constant<caf::atom("refollow")>;
using redrain_atom = caf::atom_constant<caf::atom("redrain")>;

/// A hub shard, plus its sweep timer, what a broker actor sends it
/// (stream_follower_actor) and the retry of a follow that failed (user,
/// generation, fresh).
using hub_impl = hub_actor::extend<
  caf::reacts_to<sweep_atom>,
  caf::reacts_to<redrain_atom>,
  caf::reacts_to<refollow_atom, std::string, uint64_t, bool>>::
  extend_with<stream_follower_actor>;

/// A hub shard whose streams' epochs start with `node_epoch`.
hub_actor spawn_hub(caf::actor_system& sys, const server_config& cfg,
                    wall_clock clock, std::string node_epoch,
                    std::shared_ptr<server_counters> counters);

/// Which of `shards` hub shards owns `user`.
size_t hub_index(const std::string& user, size_t shards);

/// The shard that owns `user`.
const hub_actor& hub_for(const std::vector<hub_actor>& hubs,
                         const std::string& user);

/// Where an operator's drain of the node stands: on, its pace (sockets
/// closed per second), and the sockets not yet told to close at its last
/// step.
struct drain_status {
  bool draining = false;
  uint32_t rate = 0;
  uint64_t left = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, drain_status& x) {
  return f(caf::meta::type_name("drain_status"), x.draining, x.rate, x.left);
}

/// The node's drain (docs/OPERATIONS.md, "Drain"), for the operators' API:
/// - `drain(rate)`: starts it, or changes its pace: the node says it is not
///   ready, every hub closes the sockets that join at once, and the open
///   ones are closed with 1001 at most `rate` a second (all hubs together),
///   so that their devices reconnect elsewhere without arriving at once.
/// - `undrain`: ends it (the sockets closed are not called back).
/// - `get`: where it stands.
using node_drain_actor = caf::typed_actor<
  caf::replies_to<drain_atom, uint32_t>::with<drain_status>,
  caf::replies_to<undrain_atom>::with<drain_status>,
  caf::replies_to<get_atom>::with<drain_status>>;

/// The drain, plus its step timer (every 100 ms while sockets are left;
/// for the drain numbered as given: an undrain ends that one's steps).
using node_drain_impl = node_drain_actor::extend<caf::reacts_to<sweep_atom, uint64_t>>;

/// Everything a session needs, shared by all sessions of a server.
struct session_env {
  server_config cfg;
  wall_clock clock;
  std::vector<hub_actor> hubs;
  token_watch_actor token_watch;
  node_drain_actor drain;
  std::shared_ptr<server_counters> counters;
  // One for every session: a handle each would cost every socket 16 bytes.
  std::shared_ptr<spdlog::logger> session_log = log::get("server.session");
  // Sockets refused, or on legacy tokens, each said at most 20 times in 10 s
  // (a flood of bad tokens must not flood the log).
  mutable log_budget refusal_log;
  mutable log_budget legacy_log;
};

/// A close the acceptor decided before the session started (a limit of the
/// peer's address): the socket is opened, then closed with it.
using refusal = std::pair<uint16_t, std::string>;

/// `peer` (the client's address) is only logged: a session does not keep it.
session_actor spawn_session(caf::actor_system& sys,
                            std::shared_ptr<const session_env> env,
                            accepted_link_actor transport, std::string target,
                            header_list headers, std::optional<refusal> refused,
                            std::string peer);

/// The token watch, plus its sweep timer.
using token_watch_impl = token_watch_actor::extend<caf::reacts_to<sweep_atom>>;

token_watch_actor spawn_token_watch(caf::actor_system& sys,
                                    std::shared_ptr<const session_env> env);

/// The drain reads the hubs and the drain flag (`cfg.draining`) of `env`.
node_drain_actor spawn_node_drain(caf::actor_system& sys,
                                  std::shared_ptr<const session_env> env);

acceptor_actor spawn_acceptor(caf::actor_system& sys,
                              std::shared_ptr<const session_env> env);

http_handler_actor spawn_http_api(caf::actor_system& sys,
                                  std::shared_ptr<const session_env> env);

} // namespace kullsync::server

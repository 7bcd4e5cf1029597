#pragma once

// The cluster's broker in the deterministic simulation: the stream core a
// node alone runs (src/stream/stream_core.hpp: one numbering per user, a
// bounded stream, the state a SNAPSHOT is made of, dedup keys, presence)
// with pub/sub fan-out to the nodes following a user and node liveness, in
// one actor on the simulation's clock, with seeded faults.

#include <cstdint>

#include "kullsync/server/broker.hpp"

namespace kullsync::test {

using lossy_atom = caf::atom_constant<caf::atom("lossy")>;
using failover_atom = caf::atom_constant<caf::atom("failover")>;
using resub_atom = caf::atom_constant<caf::atom("resub")>;
using outage_atom = caf::atom_constant<caf::atom("outage")>;
using unanswered_atom = caf::atom_constant<caf::atom("unanswered")>;
using late_heads_atom = caf::atom_constant<caf::atom("lateheads")>;
using late_deliveries_atom = caf::atom_constant<caf::atom("latedeliv")>;

/// The broker plus its faults:
/// - `lossy(rate)`: each delivery to a follower is lost with this
///   probability (a pub/sub message that never arrives).
/// - `resub()`: every subscription is lost, as when the subscriber
///   connection drops; each follower is told to resync.
/// - `failover(n)`: a replica that missed the last `n` (at most 2) writes
///   of every stream takes over: each stream is as it was before them, and
///   the run id changes, so each stream starts a new epoch.
/// - `outage(on)`: every request fails (Redis unreachable).
/// - `unanswered(rate)`: each publish loses its answer with this
///   probability (the link went down with the call under way): applied or
///   not, by a coin, and answered outcome_unknown.
/// - `late_heads(max_ms)`: a follow's head, read at once, is answered up
///   to `max_ms` later, while the stream's messages reach the new follower
///   at once: as with Redis, where the head's reply comes on the command
///   link and the messages after it on the subscriber link, so either may
///   come first.
/// - `late_deliveries(max_ms)`: each delivery to a follower waits up to
///   `max_ms` behind the ones before it (in order per follower), while
///   heads, reads and receipts are answered at once: a subscriber link
///   slower than the command link, so a head or a receipt may come before
///   messages older than it, and an old epoch's messages after a new
///   epoch's head (a failover).
using sim_broker_actor = server::broker_actor::extend<
  caf::reacts_to<lossy_atom, double>,
  caf::reacts_to<resub_atom>,
  caf::reacts_to<failover_atom, uint64_t>,
  caf::reacts_to<outage_atom, bool>,
  caf::reacts_to<unanswered_atom, double>,
  caf::reacts_to<late_heads_atom, int64_t>,
  caf::reacts_to<late_deliveries_atom, int64_t>>;

/// A broker that breaks a rule on purpose, to show the simulation's checks
/// catch it: `per_node_numbering` numbers each node's publishes on a
/// counter of that node's (a cluster without one shared counter).
enum class broker_mutation { none, per_node_numbering };

struct sim_broker_config {
  uint64_t seed = 1;
  size_t history_size = 1000; // entries per stream (MAXLEN)
  broker_mutation mutation = broker_mutation::none;
};

/// Writes a failover can lose, per stream.
constexpr uint64_t sim_failover_depth = 2;

sim_broker_actor spawn_sim_broker(caf::actor_system& sys, sim_broker_config cfg);

} // namespace kullsync::test

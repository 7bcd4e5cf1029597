#pragma once

/// What a node's hubs count (/metrics and `sync_server::stats`).

#include <cstdint>

#include <caf/meta/type_name.hpp>

#include "kullsync/metrics.hpp"

namespace kullsync::server {

// Families of several rows (one per label value): named once.
inline constexpr const char* sockets_open_family = "kullsync_sockets_open";
inline constexpr const char* sockets_open_family_help =
  "WebSockets joined to their user, by protocol version.";
inline constexpr const char* resumes_family = "kullsync_resumes_total";
inline constexpr const char* resumes_family_help =
  "v2 joins, by outcome: recovered (the missed messages replayed), snapshot (a resume "
  "the history could not serve, or of another epoch) or fresh (no position to resume "
  "from: a SNAPSHOT too).";

/// The hubs' metrics, each once: member, kind, exposition name, help, label.
/// Each shard counts its own; a node's are their sum.
#define KULLSYNC_HUB_METRICS(X)                                                    \
  X(v1_sockets, gauge, sockets_open_family, sockets_open_family_help, "protocol=v1")           \
  X(v2_sockets, gauge, sockets_open_family, sockets_open_family_help, "protocol=v2")           \
  X(users, gauge, "kullsync_users",                                                \
    "Users with a socket on this node (the state of one without is the stream "    \
    "core's: kullsync_state_bytes).", "")                                          \
  X(rejected_sockets, counter, "kullsync_sockets_refused_user_cap_total",         \
    "Sockets refused because their user had --max-sockets-per-user already.", "")  \
  X(frames_out, counter, "kullsync_deliveries_total",                             \
    "Frames the hubs handed to sockets (each device of a broadcast counts).", "")  \
  X(history_entries, gauge, "kullsync_history_entries",                           \
    "v2 messages held for resuming devices.", "")                                  \
  X(history_bytes, gauge, "kullsync_history_bytes",                               \
    "Memory the v2 histories hold, in bytes.", "")                                 \
  X(history_evicted, counter, "kullsync_history_evicted_total",                   \
    "v2 messages evicted by size, age or memory (their positions unrecoverable).", "") \
  X(resumes_recovered, counter, resumes_family, resumes_family_help, "outcome=recovered")     \
  X(resumes_snapshot, counter, resumes_family, resumes_family_help, "outcome=snapshot")       \
  X(joins_fresh, counter, resumes_family, resumes_family_help, "outcome=fresh")             \
  X(replayed, counter, "kullsync_replayed_messages_total",                        \
    "Messages sent to resuming sockets.", "")                                      \
  X(duplicates, counter, "kullsync_duplicate_client_messages_total",              \
    "Client messages and HTTP requests answered with their first result.", "")     \
  X(state_bytes, gauge, "kullsync_state_bytes",                                   \
    "Estimated memory of what the hubs remember of users.", "")                    \
  X(shoots_evicted, counter, "kullsync_shoots_evicted_total",                     \
    "Active shoots forgotten by the per-user cap or for silence.", "")             \
  X(users_forgotten, counter, "kullsync_users_forgotten_total",                   \
    "Users forgotten for idleness or the memory cap.", "")                         \
  X(order_faults, counter, "kullsync_delivery_order_faults_total",               \
    "v2 deliveries withheld because they were not the socket's next position "    \
    "(never expected: each is logged).", "")                                     \
  X(acks_waiting, gauge, "kullsync_acks_waiting",                                \
    "Client messages numbered whose ACK waits until this node applied their "     \
    "position.", "")                                                               \
  X(broker_errors, none, "", "cluster: broker requests that failed", "")          \
  X(gap_messages, none, "", "cluster: messages read back to fill gaps", "")       \
  X(stream_resets, none, "", "cluster: streams followed afresh (4009)", "")

KULLSYNC_METRIC_GROUP(hub_metrics, KULLSYNC_HUB_METRICS)

/// Counters of one shard, or of a node (summed with +=).
using hub_stats = hub_metrics<uint64_t>;

/// Sockets joined, both protocols.
inline uint64_t sockets_of(const hub_stats& s) { return s.v1_sockets + s.v2_sockets; }

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hub_stats& x) {
  return f(caf::meta::type_name("hub_stats") KULLSYNC_METRIC_FIELDS(KULLSYNC_HUB_METRICS));
}

} // namespace kullsync::server

#pragma once

/// What a node's hubs count (GET /api/sync/status, /metrics, and
/// `sync_server::stats`).

#include <cstdint>

#include <caf/meta/type_name.hpp>

namespace kullsync::server {

/// Counters of one shard (summed by /api/sync/status).
struct hub_stats {
  uint64_t users = 0;
  uint64_t sockets = 0;
  uint64_t v2_sockets = 0;
  uint64_t frames_out = 0;
  uint64_t rejected_sockets = 0;
  uint64_t resumes_recovered = 0; // v2 joins that got the missed messages
  uint64_t resumes_snapshot = 0;  // v2 joins that got a SNAPSHOT
  uint64_t replayed = 0;          // messages sent in recoveries
  uint64_t duplicates = 0;        // client messages answered with a first ACK
  uint64_t history_entries = 0;
  uint64_t history_bytes = 0;
  uint64_t history_evicted = 0;
  uint64_t state_bytes = 0;       // what the hub remembers of users (estimate)
  uint64_t shoots_evicted = 0;    // by the per-user cap or for silence
  uint64_t users_forgotten = 0;   // idle users, or past the memory cap
  uint64_t broker_errors = 0;     // cluster: broker requests that failed
  uint64_t gap_messages = 0;      // cluster: messages read back to fill gaps
  uint64_t stream_resets = 0;     // cluster: streams followed afresh (4009)

  /// Adds another shard's counters (a node's are the sum of its shards').
  hub_stats& operator+=(const hub_stats& x) {
    users += x.users;
    sockets += x.sockets;
    v2_sockets += x.v2_sockets;
    frames_out += x.frames_out;
    rejected_sockets += x.rejected_sockets;
    resumes_recovered += x.resumes_recovered;
    resumes_snapshot += x.resumes_snapshot;
    replayed += x.replayed;
    duplicates += x.duplicates;
    history_entries += x.history_entries;
    history_bytes += x.history_bytes;
    history_evicted += x.history_evicted;
    state_bytes += x.state_bytes;
    shoots_evicted += x.shoots_evicted;
    users_forgotten += x.users_forgotten;
    broker_errors += x.broker_errors;
    gap_messages += x.gap_messages;
    stream_resets += x.stream_resets;
    return *this;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hub_stats& x) {
  return f(caf::meta::type_name("hub_stats"), x.users, x.sockets, x.v2_sockets,
           x.frames_out, x.rejected_sockets, x.resumes_recovered, x.resumes_snapshot,
           x.replayed, x.duplicates, x.history_entries, x.history_bytes,
           x.history_evicted, x.state_bytes, x.shoots_evicted, x.users_forgotten,
           x.broker_errors, x.gap_messages, x.stream_resets);
}

} // namespace kullsync::server

#pragma once

/// Counters of the server's refusals and limits, shared by every session,
/// the acceptor and the HTTP API of one server (atomic adds, no lock), read
/// by whoever reports them.

#include <array>
#include <atomic>
#include <cstdint>

#include "kullsync/metrics.hpp"

namespace kullsync::server {

/// The close codes counted one by one; any other counts as "other".
inline constexpr std::array<uint16_t, 15> counted_close_codes{
  1000, 1001, 1002, 1006, 1007, 1008, 1009, 1011, 1013, 4000, 4001, 4002, 4003, 4008, 4009};

/// Client message types counted one by one: PING, UPDATE_PROGRESS, REFRESH,
/// another type, a frame that did not decode.
inline constexpr std::array<const char*, 5> counted_message_types{
  "PING", "UPDATE_PROGRESS", "REFRESH", "other", "invalid"};

// Families of several rows (one per label value): named once.
inline constexpr const char* auth_refusals_family = "kullsync_auth_refusals_total";
inline constexpr const char* auth_refusals_family_help =
  "Sockets refused at authentication, by close code.";
inline constexpr const char* limit_refusals_family = "kullsync_rate_limit_refusals_total";
inline constexpr const char* limit_refusals_family_help = "Refusals by a rate limit or cap, by limit.";

/// What sessions, the acceptor, the token watch and the HTTP API count, each
/// once: member, kind, exposition name, help, label. /metrics and the tests
/// read this list; the counts by close code and by message type, and the ACK
/// latency, are server_counters' own (their labels come from the tables
/// above).
#define KULLSYNC_SERVER_METRICS(X)                                                 \
  X(connects, counter, "kullsync_connects_total", "Sockets joined to their user.", "") \
  X(refused_no_token, counter, auth_refusals_family, auth_refusals_family_help, "code=4001")    \
  X(refused_invalid_token, counter, auth_refusals_family, auth_refusals_family_help, "code=4002") \
  X(refused_expired_token, counter, auth_refusals_family, auth_refusals_family_help, "code=4003") \
  X(legacy_tokens, counter, "kullsync_legacy_tokens_total",                       \
    "Sockets let in with an unsigned userId:deviceId (jwt+legacy).", "")          \
  X(refreshes, counter, "kullsync_token_refreshes_total",                         \
    "REFRESH answered with REFRESHED.", "")                                       \
  X(expired_closes, counter, "kullsync_token_expiry_closes_total",                \
    "Sockets closed 4003 at their token's expiry.", "")                           \
  X(rate_limited_messages, counter, limit_refusals_family, limit_refusals_family_help,         \
    "limit=client_message")                                                       \
  X(rate_limited_closes, counter, limit_refusals_family, limit_refusals_family_help,           \
    "limit=client_flood_close")                                                   \
  X(ip_socket_cap, counter, limit_refusals_family, limit_refusals_family_help, "limit=ip_sockets") \
  X(ip_upgrade_rate, counter, limit_refusals_family, limit_refusals_family_help, "limit=ip_upgrades") \
  X(http_rate_limited, counter, limit_refusals_family, limit_refusals_family_help,             \
    "limit=api_key_rate")                                                         \
  X(http_unauthorized, counter, "kullsync_http_unauthorized_total",               \
    "HTTP requests without a valid API key (401).", "")                           \
  X(invalid_ids, counter, "kullsync_invalid_ids_total",                           \
    "Ids refused (not UTF-8, control characters, length).", "")

KULLSYNC_METRIC_GROUP(server_metrics, KULLSYNC_SERVER_METRICS)

struct server_counters : server_metrics<std::atomic<uint64_t>> {
  // Now: sockets joined to their user and users with sockets on this node
  // (what the node says of itself in the cluster's list of nodes).
  std::atomic<int64_t> sockets_now{0};
  std::atomic<int64_t> users_now{0};
  std::array<std::atomic<uint64_t>, counted_close_codes.size() + 1> closes{}; // by code
  std::array<std::atomic<uint64_t>, counted_message_types.size()> messages_in{};
  /// From a client message's arrival to its ACK leaving the hub.
  metrics::histogram ack_latency{metrics::histogram::latency_seconds};

  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }

  void closed(uint16_t code) {
    size_t i = 0;
    while (i < counted_close_codes.size() && counted_close_codes[i] != code)
      ++i;
    add(closes[i]);
  }

  /// `type`: an index into counted_message_types.
  void message_in(size_t type) { add(messages_in[type]); }
};

} // namespace kullsync::server

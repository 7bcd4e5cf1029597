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
inline constexpr std::array<uint16_t, 14> counted_close_codes{
  1000, 1001, 1002, 1006, 1007, 1008, 1009, 1011, 4000, 4001, 4002, 4003, 4008, 4009};

/// Client message types counted one by one: PING, UPDATE_PROGRESS, REFRESH,
/// another type, a frame that did not decode.
inline constexpr std::array<const char*, 5> counted_message_types{
  "PING", "UPDATE_PROGRESS", "REFRESH", "other", "invalid"};

struct server_counters {
  std::atomic<uint64_t> connects{0}; // sockets joined to their user
  // Now: sockets joined to their user and users with sockets on this node
  // (what the node says of itself in the cluster's list of nodes).
  std::atomic<int64_t> sockets_now{0};
  std::atomic<int64_t> users_now{0};
  std::array<std::atomic<uint64_t>, counted_close_codes.size() + 1> closes{}; // by code
  std::array<std::atomic<uint64_t>, counted_message_types.size()> messages_in{};
  /// From a client message's arrival to its ACK leaving the hub.
  metrics::histogram ack_latency{metrics::histogram::latency_seconds};

  // Sockets refused at authentication, by close code.
  std::atomic<uint64_t> refused_no_token{0};      // 4001
  std::atomic<uint64_t> refused_invalid_token{0}; // 4002
  std::atomic<uint64_t> refused_expired_token{0}; // 4003
  std::atomic<uint64_t> legacy_tokens{0};         // jwt+legacy: unsigned sockets
  std::atomic<uint64_t> refreshes{0};             // REFRESH answered REFRESHED
  std::atomic<uint64_t> expired_closes{0};        // closed 4003 at the expiry
  // Limits.
  std::atomic<uint64_t> rate_limited_messages{0}; // client messages refused
  std::atomic<uint64_t> rate_limited_closes{0};   // sockets closed 4008
  std::atomic<uint64_t> ip_socket_cap{0};         // sockets refused: per-address cap
  std::atomic<uint64_t> ip_upgrade_rate{0};       // upgrades refused: per-address rate
  std::atomic<uint64_t> http_unauthorized{0};     // 401
  std::atomic<uint64_t> http_rate_limited{0};     // 429
  std::atomic<uint64_t> invalid_ids{0};           // ids refused (UTF-8, length)

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

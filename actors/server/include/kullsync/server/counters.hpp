#pragma once

/// Counters of the server's refusals and limits, shared by every session,
/// the acceptor and the HTTP API of one server (atomic adds, no lock), read
/// by whoever reports them.

#include <atomic>
#include <cstdint>

namespace kullsync::server {

struct server_counters {
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
};

} // namespace kullsync::server

#pragma once

/// The connection's state as the UI sees it.

#include <cstdint>
#include <string>
#include <string_view>

#include <caf/timespan.hpp>

namespace kullsync {

enum class connection_state : uint8_t {
  disconnected, // no link, and none wanted (start, or explicit disconnect)
  connecting,   // dialing; attempt > 0 when this is a retry
  connected,    // the handshake completed
  reconnecting, // waiting `retry_in` before attempt `attempt`
  failed,       // gave up; `error` says why
};

std::string_view to_string(connection_state x);

/// True if the state machine may go from `from` to `to` (disconnected to
/// failed only when connect() finds a URL that cannot be dialed).
bool is_legal_transition(connection_state from, connection_state to);

struct connection_status {
  connection_state state = connection_state::disconnected;
  uint32_t attempt = 0;         // retry number, 1-based; 0 on a first dial
                                // (kept while connected: the dial that made it)
  std::string error;            // failed: the reason; else the last loss
  caf::timespan retry_in{0};    // reconnecting: delay before the next dial
  std::string url;              // the endpoint, without credentials
  uint64_t link = 0;            // increases with every dial
  std::string protocol;         // connected: the subprotocol agreed ("kull.v2"; "" is v1)
};

/// Where this device is in its user's stream (v2), and how the stream went.
struct stream_status {
  std::string epoch;        // "" until a v2 server said
  uint64_t seq = 0;         // the last position applied
  bool recovered = false;   // the last (re)connect resumed without a snapshot
  uint64_t replayed = 0;    // messages the last resume replayed
  uint64_t resumes = 0;     // (re)connects that resumed
  uint64_t resyncs = 0;     // (re)connects that took a snapshot instead
  uint64_t duplicates = 0;  // messages at or below the position, dropped
  uint64_t gaps = 0;        // positions skipped: the link lost something
  uint64_t outbox = 0;      // client messages not yet acknowledged
  uint64_t outbox_dropped = 0; // refused: the outbox was full (NACK outbox_full)
  uint64_t refused = 0;     // client messages the server refused (NACK)
  uint64_t deferred = 0;    // NACKs "not now" (unavailable, rate_limited): sent again
};

bool operator==(const stream_status& x, const stream_status& y);

bool operator==(const connection_status& x, const connection_status& y);

} // namespace kullsync

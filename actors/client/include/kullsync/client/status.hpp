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

/// True if the state machine may go from `from` to `to`.
bool is_legal_transition(connection_state from, connection_state to);

struct connection_status {
  connection_state state = connection_state::disconnected;
  uint32_t attempt = 0;         // retry number, 1-based; 0 on a first dial
                                // (kept while connected: the dial that made it)
  std::string error;            // failed: the reason; else the last loss
  caf::timespan retry_in{0};    // reconnecting: delay before the next dial
  std::string url;              // the endpoint, without credentials
  uint64_t link = 0;            // increases with every dial
};

bool operator==(const connection_status& x, const connection_status& y);

} // namespace kullsync

#pragma once

/// What the coordinator keeps for the UI.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kullsync/client/status.hpp"
#include "kullsync/client/telemetry.hpp"
#include "kullsync/messages/types.hpp"

namespace kullsync {

struct sync_state {
  connection_status connection;
  stream_status stream; // v2: the position, and how resumes went
  /// Active shoots by shootId; completed and failed ones stay for the linger
  /// time (5 s by default), then go.
  std::map<std::string, msg::shoot_progress> shoots;
  std::optional<int64_t> credits;
  std::optional<msg::credit_update> last_credit;
  /// Devices of this user seen connected on the current link, in order.
  std::vector<msg::device_connection> devices;
  std::optional<msg::prompt_change> last_prompt;
  /// The most recent admin session updates, newest last (bounded).
  std::vector<msg::admin_session_update> admin_updates;
  std::optional<msg::provider_health> providers;
  int64_t last_sync_ms = 0; // epoch ms of the last frame received; 0: never
  uint64_t unknown_messages = 0;
  uint64_t bad_frames = 0;
  client_telemetry telemetry; // the connection's, as of this state
  uint64_t version = 0; // grows with every published snapshot
};

bool operator==(const sync_state& x, const sync_state& y);

} // namespace kullsync

#pragma once

/// Settings of the client engine's actors, with the legacy app's defaults.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/timespan.hpp>

#include "kullsync/messages/codec.hpp"

namespace kullsync {

/// The largest server frame the engine reads (its transport's limit too).
inline constexpr size_t client_frame_limit = size_t{8} << 20;

class client_store; // store.hpp

struct reconnect_config {
  /// Delay before retry n is delays[n-1]; the last entry repeats.
  std::vector<caf::timespan> delays{
    std::chrono::seconds{1},  std::chrono::seconds{2},  std::chrono::seconds{4},
    std::chrono::seconds{8},  std::chrono::seconds{16}, std::chrono::seconds{32},
    std::chrono::seconds{60}, std::chrono::seconds{60}, std::chrono::seconds{60},
    std::chrono::seconds{60}};
  /// Retries after which the connection fails.
  uint32_t max_attempts = 10;
  /// Each delay is scaled by a factor drawn from [1 - jitter, 1 + jitter].
  double jitter = 0.0;
  /// After a server's 1001 (going away: it closes every socket at once) the
  /// jitter is at least this, so that its clients do not all come back in
  /// the same instant (the contract: "reconnect with jitter").
  double going_away_jitter = 0.5;
  uint64_t jitter_seed = 0; // 0: seeded from the clock
  /// A link that stays up this long resets the schedule. The legacy client
  /// reset at the handshake, so its backoff never grew.
  caf::timespan stable_after = std::chrono::seconds{5};
};

struct keepalive_config {
  caf::timespan interval = std::chrono::seconds{30}; // application PING period
  caf::timespan deadline = std::chrono::seconds{10}; // no frame this long after a PING: peer dead
};

struct connection_config {
  std::string url = "ws://localhost:5000/ws";
  std::string user_id;
  std::string device_id;
  /// Sent as ?token=... (v1) unless `token_in_header`, then as
  /// "Authorization: Bearer ...". Defaults to "userId:deviceId".
  std::string token;
  bool token_in_header = false;
  /// The token sent: `token`, or "userId:deviceId".
  std::string effective_token() const {
    return token.empty() ? user_id + ":" + device_id : token;
  }
  /// What a server frame may be. A SNAPSHOT holds a user's whole state (up
  /// to 1000 shoots): 8 MiB is more than a server queues for one socket by
  /// default (--max-queued-bytes, 4 MiB), so any SNAPSHOT it sends is read;
  /// a smaller limit would refuse it (1009) at every connect.
  msg::decode_limits limits{client_frame_limit, 32};
  /// UPDATE_PROGRESS sent while offline wait here (latest per shoot; the one
  /// replaced ends in NACK superseded) and go out once connected. On v2 they
  /// stay until acknowledged and are resent with the same ids after each
  /// reconnect. A message that finds this many waiting is refused (NACK
  /// outbox_full, counted in stream_status::outbox_dropped).
  size_t offline_queue_limit = 256;
  /// An UPDATE_PROGRESS whose frame is longer than this is refused at once
  /// (NACK too_large) rather than sent: a server closes a link with 1009 on
  /// a frame over its limit (the server's --max-frame-bytes, 64 KiB by default),
  /// and a message kept to be resent would close every later link too.
  size_t max_message_bytes = 64 * 1024;
  /// Offer the v2 subprotocol (kull.v2); a server that does not echo it is
  /// spoken to in v1, exactly as the deployed apps do.
  bool offer_v2 = true;
  /// A link that echoed kull.v2 and sent nothing within this is lost (a v2
  /// server's first frame is WELCOME; a v1 server's the device's own
  /// DEVICE_CONNECTED, which makes the link v1).
  caf::timespan welcome_timeout = std::chrono::seconds{5};
  /// v2: a client message not acknowledged within this is sent again (same
  /// id) on the same link.
  caf::timespan ack_timeout = std::chrono::seconds{10};
  /// stop(): how long the engine waits for the server to answer its close
  /// before it ends anyway.
  caf::timespan stop_timeout = std::chrono::seconds{2};
};

struct client_config {
  connection_config connection;
  reconnect_config reconnect;
  keepalive_config keepalive;
  caf::timespan shoot_linger = std::chrono::seconds{5}; // completed/failed shoots stay this long
  /// With an HTTP client (spawn_client), the server's state is loaded while
  /// the socket is down this often, and once after each (re)connect of a v1
  /// link (a v2 link brings its own state).
  caf::timespan state_reload = std::chrono::seconds{5};
  size_t max_admin_updates = 50;
  /// Epoch ms at the actor clock's current time; empty: the system clock.
  std::optional<int64_t> wall_start_ms;
  /// v2: keeps the stream position with its state, and the unacknowledged
  /// messages, across restarts (store.hpp); null: in memory only.
  std::shared_ptr<client_store> store;
  /// The stream is saved at most this often.
  caf::timespan save_every = std::chrono::seconds{1};
};

/// The deployed environments' endpoints: "dev", "staging", "prod".
std::optional<std::string> environment_url(const std::string& env);

} // namespace kullsync

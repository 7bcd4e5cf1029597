#include "kullsync/client/status.hpp"

#include <tuple>

#include "kullsync/client/config.hpp"
#include "kullsync/client/sync_state.hpp"

namespace kullsync {

std::string_view to_string(connection_state x) {
  switch (x) {
    case connection_state::disconnected: return "disconnected";
    case connection_state::connecting: return "connecting";
    case connection_state::connected: return "connected";
    case connection_state::reconnecting: return "reconnecting";
    case connection_state::failed: return "failed";
  }
  return "?";
}

bool is_legal_transition(connection_state from, connection_state to) {
  using s = connection_state;
  if (to == s::disconnected) // an explicit disconnect, from anywhere
    return true;
  switch (from) {
    case s::disconnected: // failed: connect() with a URL that cannot be dialed
      return to == s::connecting || to == s::failed;
    case s::connecting: // a new endpoint or network change re-dials at once
      return to == s::connected || to == s::reconnecting || to == s::failed
             || to == s::connecting;
    case s::connected:
      // failed: the last allowed attempt connected but died before it
      // proved stable, so it counts as failed too.
      return to == s::reconnecting || to == s::connecting || to == s::failed;
    case s::reconnecting:
      return to == s::connecting;
    case s::failed:
      return to == s::connecting;
  }
  return false;
}

bool operator==(const connection_status& x, const connection_status& y) {
  return std::tie(x.state, x.attempt, x.error, x.retry_in, x.url, x.link, x.protocol)
         == std::tie(y.state, y.attempt, y.error, y.retry_in, y.url, y.link, y.protocol);
}

namespace {

auto fields(const stream_status& x) {
  return std::tie(x.epoch, x.seq, x.recovered, x.replayed, x.resumes, x.resyncs,
                  x.duplicates, x.gaps, x.outbox, x.outbox_dropped, x.refused, x.deferred);
}

} // namespace

bool operator==(const stream_status& x, const stream_status& y) {
  return fields(x) == fields(y);
}

bool operator==(const sync_state& x, const sync_state& y) {
  return std::tie(x.connection, x.stream, x.shoots, x.credits, x.last_credit, x.devices,
                  x.last_prompt, x.admin_updates, x.providers, x.last_sync_ms,
                  x.unknown_messages, x.bad_frames, x.telemetry, x.version)
         == std::tie(y.connection, y.stream, y.shoots, y.credits, y.last_credit,
                     y.devices, y.last_prompt, y.admin_updates, y.providers,
                     y.last_sync_ms, y.unknown_messages, y.bad_frames, y.telemetry,
                     y.version);
}

std::optional<std::string> environment_url(const std::string& env) {
  if (env == "dev" || env == "development")
    return "ws://localhost:5000/ws";
  if (env == "staging")
    return "wss://staging.kullai.com/ws";
  if (env == "prod" || env == "production")
    return "wss://kullai.com/ws";
  return std::nullopt;
}

} // namespace kullsync

#pragma once

// Private to the client engine: the phase of the connection's link, the one
// state machine of the connection actor. The public connection_state is
// derived from it (public_state); the rest of the actor's flags are
// orthogonal to it (see connection_state.hpp). Pure logic, no CAF.

#include <cstdint>
#include <optional>
#include <string_view>

#include "kullsync/client/status.hpp"

namespace kullsync::conn {

enum class link_phase : uint8_t {
  idle,             // nobody wants a link (never connected, or disconnected)
  fetching_token,   // a dial waits for a fresh token from the provider
  dialing,          // the transport connects and upgrades
  awaiting_welcome, // the server echoed kull.v2: its WELCOME (or a v1 frame) decides
  ready_v1,         // the link carries the stream, v1
  ready_v2,         // the link carries the stream, v2
  lost,             // the link is gone; the reconnect policy is asked what next
  waiting_retry,    // the policy's delay runs before the next dial
  failed,           // given up, or the token was refused; only a connect dials
};

std::string_view to_string(link_phase x);

/// True if the connection may go from `from` to `to`:
/// - a phase that is not live -> idle (a disconnect) or a dial
///   (fetching_token, dialing: a connect, a retry, a new endpoint, a resume
///   at once); a live link is closed first (close_link: lost);
/// - fetching_token -> dialing (the token came);
/// - dialing -> awaiting_welcome | ready_v1 (the handshake completed);
/// - awaiting_welcome -> ready_v1 | ready_v2;
/// - a live phase -> lost | failed (refused token);
/// - lost -> waiting_retry | failed (the policy's answer).
bool is_legal(link_phase from, link_phase to);

/// What subscribers see in this phase; none for `lost`, which keeps
/// showing the last state until the policy says what comes next (a
/// "reconnecting" without its delay would tell the UI nothing true).
std::optional<connection_state> public_state(link_phase x);

/// The current link may still report events (opened, frames, closed).
constexpr bool is_live(link_phase x) {
  return x == link_phase::fetching_token || x == link_phase::dialing
         || x == link_phase::awaiting_welcome || x == link_phase::ready_v1
         || x == link_phase::ready_v2;
}

/// The current link's handshake completed: frames may be sent on it.
constexpr bool is_open(link_phase x) {
  return x == link_phase::awaiting_welcome || x == link_phase::ready_v1
         || x == link_phase::ready_v2;
}

constexpr bool is_ready(link_phase x) {
  return x == link_phase::ready_v1 || x == link_phase::ready_v2;
}

} // namespace kullsync::conn

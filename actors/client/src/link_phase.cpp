#include "link_phase.hpp"

namespace kullsync::conn {

std::string_view to_string(link_phase x) {
  switch (x) {
    case link_phase::idle: return "idle";
    case link_phase::fetching_token: return "fetching_token";
    case link_phase::dialing: return "dialing";
    case link_phase::awaiting_welcome: return "awaiting_welcome";
    case link_phase::ready_v1: return "ready_v1";
    case link_phase::ready_v2: return "ready_v2";
    case link_phase::lost: return "lost";
    case link_phase::waiting_retry: return "waiting_retry";
    case link_phase::failed: return "failed";
  }
  return "?";
}

bool is_legal(link_phase from, link_phase to) {
  using p = link_phase;
  switch (to) {
    case p::idle:           // a disconnect
    case p::fetching_token: // a dial: connect, retry, endpoint, resume
      return !is_live(from); // a live link is closed (lost) first
    case p::dialing:         // a dial with a token at hand, or the token came
      return !is_live(from) || from == p::fetching_token;
    case p::awaiting_welcome:
      return from == p::dialing;
    case p::ready_v1:
      return from == p::dialing || from == p::awaiting_welcome;
    case p::ready_v2:
      return from == p::awaiting_welcome;
    case p::lost:
      return is_live(from);
    case p::waiting_retry:
      return from == p::lost;
    case p::failed: // or at once: an engine whose URL cannot be dialed
      return from == p::lost || is_live(from) || from == p::idle;
  }
  return false;
}

std::optional<connection_state> public_state(link_phase x) {
  using p = link_phase;
  using s = connection_state;
  switch (x) {
    case p::idle: return s::disconnected;
    case p::fetching_token:
    case p::dialing:
    case p::awaiting_welcome: return s::connecting;
    case p::ready_v1:
    case p::ready_v2: return s::connected;
    case p::lost: return std::nullopt;
    case p::waiting_retry: return s::reconnecting;
    case p::failed: return s::failed;
  }
  return std::nullopt;
}

} // namespace kullsync::conn

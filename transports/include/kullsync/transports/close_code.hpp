#pragma once

/// The WebSocket close codes kullsync sends and understands (RFC 6455 7.4
/// and the contract, ../shared/PROTOCOL.md "Close codes"). No dependencies.

#include <cstdint>

namespace kullsync::close_code {

// Plain constants rather than an enum: they travel in messages as uint16_t.
constexpr uint16_t normal = 1000;
constexpr uint16_t going_away = 1001; // server shutting down: reconnect with jitter
constexpr uint16_t protocol_error = 1002;
constexpr uint16_t no_status = 1005; // a close frame without a code (never sent)
constexpr uint16_t abnormal = 1006; // no close frame: reset, refused, timeout
constexpr uint16_t invalid_payload = 1007; // e.g. invalid UTF-8
constexpr uint16_t policy_violation = 1008; // socket cap, slow consumer
constexpr uint16_t too_big = 1009;
constexpr uint16_t internal_error = 1011;
constexpr uint16_t try_again_later = 1013; // the server cannot serve it now (its broker)
constexpr uint16_t keepalive_timeout = 4000; // the client's own: no answer to its PING
constexpr uint16_t no_token = 4001; // "No token provided"
constexpr uint16_t invalid_token = 4002; // "Invalid token": do not retry with it
constexpr uint16_t token_expired = 4003; // get a new token, then reconnect
constexpr uint16_t rate_limited = 4008; // reconnect after backoff
constexpr uint16_t stream_interrupted = 4009; // v2: reconnect at once and resume

/// The codes a peer may send in a close frame (RFC 6455 7.4.1, 7.4.2).
constexpr bool valid_on_wire(uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1013)
         || (c >= 3000 && c <= 4999);
}

} // namespace kullsync::close_code

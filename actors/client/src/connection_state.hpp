#pragma once

// Private to the client engine: the connection actor's state and the parts
// its files share. connection.cpp: dialing, the link's life, the behavior;
// connection_frames.cpp: what arrives (decoding, the v2 stream's rules);
// connection_tokens.cpp: signed tokens (fetch, in-band refresh, refusals).

#include <caf/typed_event_based_actor.hpp>

#include "kullsync/client/store.hpp"
#include "kullsync/log.hpp"
#include "link_phase.hpp"
#include "spawn.hpp"
#include "stream_link.hpp"

namespace kullsync::conn {

struct connection_actor_state {
  client_config cfg;
  wall_clock clock;
  dialer_actor transport;
  coordinator_link coord;
  reconnect_policy_actor policy;
  keepalive_actor keepalive;
  connection_status status;
  std::string url;
  // The one state machine: changed only by enter() (connection.cpp).
  link_phase phase = link_phase::idle;
  // Orthogonal to the phase:
  bool wanted = false;           // the user asked to be connected (a lost or
                                 // failed link is still wanted; idle is not)
  bool echoed_v2 = false;        // the current link echoed kull.v2: even once
                                 // judged v1 it refuses v2-only frames
  bool resumed_at_once = false;  // spans links: one redial without backoff
                                 // until a link proves stable
  bool resend_pending = false;   // a resend timer runs (one at a time)
  uint64_t epoch = 0;            // invalidates timers and pending answers of
                                 // links before the current one
  bool awaiting_pong = false;    // a PING of this link is unanswered
  bool v1_unconfirmed = false;   // a v1 link with no frame yet: a server that
                                 // refuses the token closes it (4001/4002)
                                 // after accepting, so the outbox waits
  std::optional<uint64_t> stopping; // stop(): the link whose close ends the actor
  flow::credit_return credit; // frames of the current link handled
  stream_link stream;      // the v2 position and the outbox
  stream_status reported;  // what the coordinator last heard of it
  std::shared_ptr<client_store> store;
  // Signed tokens: the provider (may be null), the token the next dial
  // sends, and its expiry as the server announced it.
  token_provider_actor tokens;
  std::string token;
  bool token_stale = true; // fetch a fresh one before the next dial (spans links)
  bool token_refused = false; // the server refused the token held (4001-4003): no dial
                              // sends it again (a network change is no reason to)
  // The token's expiry as the server announced it (its clock), and the
  // same instant on this device's clock, which may be set minutes apart.
  std::optional<int64_t> expires_at;
  std::optional<int64_t> expires_local;
  // Telemetry: a live link lost at `lost_at_ms` (until live again), and the
  // dials since.
  client_telemetry telemetry;
  std::optional<int64_t> lost_at_ms;
  uint32_t dials_since_lost = 0;
  bool telemetry_changed = false; // not yet sent to the coordinator
  std::shared_ptr<spdlog::logger> log = log::get("client.connection");
  // "user/device", first on each log line: a host (or a simulation) may run
  // several engines, all on this logger.
  std::string who;
  static inline const char* name = "kullsync.connection";
};

using conn_ptr = connection_impl::stateful_pointer<connection_actor_state>;

/// The one way to change phase: asserts the transition, and publishes
/// `shown` (with the phase's public state) when the phase has a public face.
void enter(conn_ptr self, link_phase next, connection_status shown);
void publish(conn_ptr self, connection_status next);
/// Closes the current link, if live, with `code`: it is `lost` (its late
/// events, timers and pending answers are ignored from now on).
void close_link(conn_ptr self, uint16_t code, std::string reason);
void report_stream(conn_ptr self);
int64_t now_ms(conn_ptr self);
void arm_resend(conn_ptr self);
void save_outbox(conn_ptr self);
void send_frame(conn_ptr self, const msg::client_message& m);
/// The link is gone: ask the policy what next, unless nobody wants a link.
/// `close`: the code the server closed with, where it changes the next step
/// (1013, 4009: retried, never given up; 1001: with jitter); 0 for none.
void lost(conn_ptr self, std::string reason, uint16_t close = 0);
/// Redials at once and resumes from the position (once per stable link;
/// else `lost`, with `close`).
void resume_now(conn_ptr self, std::string reason, uint16_t close = 0);
/// The link carries the stream now (v2 once its WELCOME came, else v1).
void ready(conn_ptr self, bool v2);
/// Sends the outbox on the link now open (v1: once its first frame came;
/// v2: as much as the stream's window holds, the rest as answers come).
void flush_outbox(conn_ptr self, bool v2);
/// The link carries the stream and what the app sends on it now.
bool takes_stream_messages(conn_ptr self);
/// Sends the coordinator the telemetry if it changed.
void report_telemetry(conn_ptr self);

// connection_frames.cpp
/// A batch of frames from the current link.
void on_frames(conn_ptr self, const frame_batch& frames);

// connection_tokens.cpp
bool needs_token(conn_ptr self);
void note_expiry(conn_ptr self, std::optional<int64_t> at, int64_t server_now);
void refresh(conn_ptr self);
void refused(conn_ptr self, uint16_t code, std::string why);

} // namespace kullsync::conn

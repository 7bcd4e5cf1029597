#pragma once

// Private to the client engine: the spawn functions of its actors, and the
// protocols they speak among themselves (each actor's public interface
// extended by the messages only the engine sends it: timers, helpers).
// engine.hpp's spawn_client wires them together.

#include <optional>

#include <caf/fwd.hpp>

#include "kullsync/client/config.hpp"
#include "kullsync/client/protocol.hpp"
#include "kullsync/client/store.hpp"
#include "kullsync/common/clock.hpp"
#include "kullsync/transports/http_client.hpp"
#include "kullsync/client/engine.hpp"
#include "kullsync/testing/stream_mutation.hpp"
#include "dial.hpp"

namespace kullsync {

using retry_atom = caf::atom_constant<caf::atom("retry")>;
using healthy_atom = caf::atom_constant<caf::atom("healthy")>;
using dead_atom = caf::atom_constant<caf::atom("dead")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using welcome_atom = caf::atom_constant<caf::atom("welcome")>;
using resend_atom = caf::atom_constant<caf::atom("resend")>;
using ended_atom = caf::atom_constant<caf::atom("ended")>;
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using save_atom = caf::atom_constant<caf::atom("save")>;
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;
using reset_atom = caf::atom_constant<caf::atom("reset")>;
using up_atom = caf::atom_constant<caf::atom("up")>;
using down_atom = caf::atom_constant<caf::atom("down")>;
using heard_atom = caf::atom_constant<caf::atom("heard")>;
using bad_frame_atom = caf::atom_constant<caf::atom("bad_frame")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;

// -- reconnect policy -----------------------------------------------------------

struct retry_decision {
  bool give_up = false;
  uint32_t attempt = 0;     // 1-based
  caf::timespan delay{0};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, retry_decision& x) {
  return f(caf::meta::type_name("retry_decision"), x.give_up, x.attempt,
           x.delay);
}

/// The schedule of retries. `lost` asks for the next step, given the close
/// code the link ended with (0: none) where it changes the step: 1013 (the
/// server asks to come back later) and 4009 (to resume) are retried and never
/// given up, 1001 (the server going away) is retried with jitter; `reset`
/// starts the schedule over (a link proved healthy, or the network changed).
using reconnect_policy_actor = caf::typed_actor<
  caf::replies_to<lost_atom, uint16_t>::with<retry_decision>,
  caf::reacts_to<reset_atom>>;

// -- keepalive --------------------------------------------------------------

/// Pings while a link is up and declares the peer dead when nothing comes
/// back within the deadline.
using keepalive_actor = caf::typed_actor<
  caf::reacts_to<up_atom, uint64_t>,
  caf::reacts_to<down_atom>,
  caf::reacts_to<heard_atom, uint64_t>>;

// -- what the engine's actors tell each other ----------------------------------

/// The subscribers, plus what the coordinator gives them to pass on.
using subscribers_impl = subscribers_actor::extend<
  caf::reacts_to<publish_atom, sync_state>,
  caf::reacts_to<publish_atom, connection_status>,
  caf::reacts_to<publish_atom, inbound_batch>,
  caf::reacts_to<flush_atom>>;

/// A callback adapter (make_state_callback and the like) answers this once
/// every callback sent before it has returned: an engine's subscribers end
/// only then, so that await_stop() returns after the app's last callback.
using flushable_actor = caf::typed_actor<caf::replies_to<flush_atom>::with<bool>>;

/// The name of a callback adapter's actor: the subscribers flush those.
inline constexpr const char* callback_actor_name = "kullsync.callback";

/// The coordinator as the connection sees it: what arrived (decoded
/// batches, bad frames) and how the link and its stream go.
using coordinator_link = caf::typed_actor<
  caf::reacts_to<inbound_atom, inbound_batch>,
  // NACKs the engine made itself: for the app, not news from the server.
  caf::reacts_to<outcome_atom, inbound_batch>,
  caf::reacts_to<status_atom, connection_status>,
  caf::reacts_to<status_atom, stream_status>,
  caf::reacts_to<status_atom, client_telemetry>,
  caf::reacts_to<bad_frame_atom>>;

/// The connection, plus its transport's events (it is the listener), its timers (`retry(epoch)`, `healthy(epoch)`,
/// `welcome(epoch)`: a link that echoed kull.v2 without a WELCOME is v1;
/// `resend(epoch)`: unacknowledged messages go again) and the keepalive's
/// verdict (`dead(link)`); `ended` (stop's close took too long); `get(token)` answers the token a request on the
/// user's behalf carries now (the state loader's).
using connection_impl = connection_actor::extend_with<transport_listener_actor>::extend<
  caf::replies_to<get_atom, token_atom>::with<std::string>,
  caf::reacts_to<retry_atom, uint64_t>,
  caf::reacts_to<healthy_atom, uint64_t>,
  caf::reacts_to<welcome_atom, uint64_t>,
  caf::reacts_to<resend_atom, uint64_t>,
  caf::reacts_to<refresh_atom, uint64_t>,
  caf::reacts_to<dead_atom, uint64_t>,
  caf::reacts_to<ended_atom>>;

/// The keepalive, plus its timers: `tick(link, n)` sends PING n,
/// `deadline(link, n)` checks that something came back.
using keepalive_impl = keepalive_actor::extend<
  caf::reacts_to<tick_atom, uint64_t, uint64_t>,
  caf::reacts_to<deadline_atom, uint64_t, uint64_t>>;

/// The coordinator, plus the publishing of changes gathered meanwhile
/// (`flush`, queued behind a burst), the saving of the stream (`save`) and
/// the removal timers of shoots.
using coordinator_impl = coordinator_actor::extend_with<coordinator_link>::extend<
  caf::reacts_to<flush_atom>,
  caf::reacts_to<save_atom>,
  caf::reacts_to<expire_atom, std::string, uint64_t>>;

reconnect_policy_actor spawn_reconnect_policy(caf::actor_system& sys,
                                              reconnect_config cfg);

/// Pings through `conn` and reports a dead peer to it.
keepalive_actor spawn_keepalive(caf::actor_system& sys, keepalive_config cfg,
                                wall_clock clock, connection_impl conn);

subscribers_impl spawn_subscribers(caf::actor_system& sys);

/// Starts from `saved` (a position with its state) if given, and saves to
/// cfg.store as the stream moves.
coordinator_impl spawn_coordinator(caf::actor_system& sys,
                                    const client_config& cfg,
                                    sim::stream_mutation broken, wall_clock clock,
                                    subscribers_impl subs,
                                    std::optional<saved_stream> saved);

/// The connection spawns and links its reconnect policy and keepalive, and
/// drives `transport`; it is linked to the coordinator so that one exit
/// stops the engine. It resumes from `saved`'s position and resends the
/// outbox cfg.store kept.
connection_actor spawn_connection(caf::actor_system& sys,
                                  const client_config& cfg,
                                  sim::stream_mutation broken, wall_clock clock,
                                  dialer_actor transport,
                                  coordinator_link coord,
                                  std::optional<saved_stream> saved,
                                  token_provider_actor tokens);

/// Loads GET /api/sync/state through `http` into `coord`, with the token
/// `conn` dials with: at start, while the socket is down and right after
/// each (re)connect of a v1 link (it subscribes to the connection's status).
status_subscriber_actor spawn_state_loader(caf::actor_system& sys,
                                           const client_config& cfg,
                                           http_client_actor http,
                                           coordinator_actor coord,
                                           connection_impl conn);

/// spawn_client, with `broken` broken on purpose (the simulation kit's
/// spawn_mutated_client; `none` for every app).
client_engine spawn_engine(caf::actor_system& sys, const client_config& cfg,
                           sim::stream_mutation broken, dialer_actor transport,
                           http_client_actor http, token_provider_actor tokens);

} // namespace kullsync

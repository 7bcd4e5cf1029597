#pragma once

/// The typed interfaces of the client engine's actors. Each actor's whole
/// protocol is one typed_actor here; see docs/ARCHITECTURE.md for who sends
/// what to whom.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/client/status.hpp"
#include "kullsync/client/sync_state.hpp"
#include "kullsync/common/atoms.hpp"
#include "kullsync/common/inspect_optional.hpp"
#include "kullsync/messages/caf_types.hpp"
#include "kullsync/messages/types.hpp"
#include "kullsync/transports/transport.hpp"

namespace kullsync {

// -- atoms --------------------------------------------------------------------

using disconnect_atom = caf::atom_constant<caf::atom("disconnect")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using endpoint_atom = caf::atom_constant<caf::atom("endpoint")>;
using network_atom = caf::atom_constant<caf::atom("network")>;
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using state_atom = caf::atom_constant<caf::atom("state")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsub_atom = caf::atom_constant<caf::atom("unsub")>;
using token_atom = caf::atom_constant<caf::atom("token")>;
using telemetry_atom = caf::atom_constant<caf::atom("telemetry")>;

// -- inspection (CAF needs it wherever these types are sent) ------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection_status& x) {
  return f(caf::meta::type_name("connection_status"), x.state, x.attempt,
           x.error, x.retry_in, x.url, x.link, x.protocol);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_status& x) {
  return f(caf::meta::type_name("stream_status"), x.epoch, x.seq, x.recovered,
           x.replayed, x.resumes, x.resyncs, x.duplicates, x.gaps, x.outbox,
           x.outbox_dropped, x.refused, x.deferred);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, histogram_counts& x) {
  return f(caf::meta::type_name("histogram_counts"), x.bounds, x.counts, x.count, x.sum,
           x.max);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_telemetry& x) {
  return f(caf::meta::type_name("client_telemetry"), x.dials, x.connects, x.reconnects,
           x.time_to_live, x.attempts, x.ack_rtt, x.decode_errors, x.replayed, x.resumes,
           x.snapshots, x.gaps, x.duplicates, x.queue_depth, x.queue_dropped);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_state& x) {
  auto credits = detail::optional_field(x.credits);
  auto last_credit = detail::optional_field(x.last_credit);
  auto last_prompt = detail::optional_field(x.last_prompt);
  auto providers = detail::optional_field(x.providers);
  return f(caf::meta::type_name("sync_state"), x.connection, x.stream, x.shoots, credits,
           last_credit, x.devices, last_prompt, x.admin_updates, providers,
           x.last_sync_ms, x.unknown_messages, x.bad_frames, x.telemetry, x.version);
}

/// Decoded server messages that arrived together, oldest first.
using inbound_batch = std::vector<msg::server_message>;

// -- subscribers (implemented by host applications) ----------------------------

/// Receives a full snapshot after every change (and one on subscribing).
using state_subscriber_actor
  = caf::typed_actor<caf::reacts_to<state_atom, sync_state>>;

/// Receives every connection status change (and the current one on subscribing).
using status_subscriber_actor
  = caf::typed_actor<caf::reacts_to<status_atom, connection_status>>;

/// Receives decoded server messages in arrival order (BATCH arrives
/// unpacked). Messages that arrived together come as one batch: a burst of
/// thousands costs the subscriber a handful of mailbox rounds, not thousands.
using message_subscriber_actor
  = caf::typed_actor<caf::reacts_to<inbound_atom, inbound_batch>>;

/// Any number of subscribers per topic, added and removed at run time. A
/// message subscriber names one server type, or gets all with `unknown`.
using subscribers_actor = caf::typed_actor<
  caf::reacts_to<subscribe_atom, state_subscriber_actor>,
  caf::reacts_to<subscribe_atom, status_subscriber_actor>,
  caf::reacts_to<subscribe_atom, msg::server_type, message_subscriber_actor>,
  caf::reacts_to<unsub_atom, caf::actor_addr>>;

// -- coordinator ------------------------------------------------------------

/// Keeps the state the UI shows and publishes it after changes: changes that
/// arrive together (a burst already in the mailbox) go out as one snapshot,
/// an isolated change at once. `load` offers what the server remembers
/// (GET /api/sync/state): while the socket is down it replaces shoots and
/// credits; while connected it fills in only what the current link has not
/// delivered itself.
using coordinator_actor = caf::typed_actor<
  caf::reacts_to<load_atom, msg::user_state>,
  caf::replies_to<get_atom>::with<sync_state>>;

// -- connection ---------------------------------------------------------------

/// Where the engine gets a fresh signed token: before a dial that needs one
/// (the first, and after 4003 or near the token's expiry) and ahead of the
/// expiry WELCOME/REFRESHED announced, for an in-band REFRESH. An error (or
/// an empty token) counts as a failed dial. make_token_provider adapts a
/// function.
using token_provider_actor = caf::typed_actor<caf::replies_to<token_atom>::with<std::string>>;

/// Owns the transport and the link's phase; decodes and encodes frames. Its
/// public protocol is the host's commands (the transport's events and the
/// timers are the engine's own).
using connection_actor = caf::typed_actor<
  caf::reacts_to<connect_atom>,
  caf::reacts_to<disconnect_atom>,
  caf::reacts_to<stop_atom>,
  caf::reacts_to<endpoint_atom, std::string>,
  caf::reacts_to<network_atom>,
  caf::reacts_to<send_atom, msg::client_message>,
  caf::replies_to<get_atom>::with<connection_status>,
  caf::replies_to<get_atom, telemetry_atom>::with<client_telemetry>>;

} // namespace kullsync

#pragma once

// The typed interfaces of the sync server's actors among themselves; private
// to actors/server (an embedding app sees `sync_server`'s handles).
//
//   transport --accept--> acceptor --spawns--> session (one per socket)
//   session --join/leave/publish--> hub shard (users hashed over shards)
//   hub shard --send(shared_frame)--> the sockets of that user
//   HTTP --http(exchange)--> http_api --publish--> hub shard

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/common/atoms.hpp"
#include "kullsync/common/inspect_optional.hpp"
#include "kullsync/messages/caf_types.hpp"
#include "kullsync/messages/types.hpp"
#include "kullsync/server/broker.hpp"
#include "kullsync/server/hub_stats.hpp"
#include "kullsync/transports/http.hpp"
#include "kullsync/transports/transport.hpp"

namespace kullsync::server {

using join_atom = caf::atom_constant<caf::atom("join")>;
using trigger_atom = caf::atom_constant<caf::atom("trigger")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using unwatch_atom = caf::atom_constant<caf::atom("unwatch")>;
/// An operator's drain of this node (POST /api/sync/drain), and its end.
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using undrain_atom = caf::atom_constant<caf::atom("undrain")>;
/// A user's revocation changed: its sockets check their tokens again.
using revoked_atom = caf::atom_constant<caf::atom("revoked")>;

/// A socket joining its user: who, which protocol, and (v2) where it
/// resumes.
struct join_request {
  std::string user;
  std::string device;
  bool v2 = false;
  std::string epoch;            // v2 resume: the epoch the device knows ("" none)
  std::optional<uint64_t> since; // and the last position it applied
  std::optional<int64_t> expires_at; // the token's expiry, for WELCOME
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request& x) {
  auto since = detail::optional_field(x.since);
  auto expires = detail::optional_field(x.expires_at);
  return f(caf::meta::type_name("join_request"), x.user, x.device, x.v2, x.epoch,
           since, expires);
}

/// One socket's actor: its transport's listener, which also takes a close
/// order (shutdown) and `revoked` (its token is checked again: closed 4002
/// if an operator revoked it). Broadcast frames bypass it (hub -> socket).
using session_actor
  = transport_listener_actor::extend<caf::reacts_to<close_atom, uint16_t, std::string>,
                                     caf::reacts_to<revoked_atom>>;

/// A shard of the user -> sockets registry, and of the users' streams.
/// - `join(request, session, socket)`: registers the socket (false: the
///   user's socket cap is reached). For a v2 socket it sends, in the same
///   turn, WELCOME and then the missed messages or a SNAPSHOT, so that
///   nothing published afterwards is missed or sent twice. When the user's
///   head must be read first (a cluster), it answers once that is done: the
///   session completes the handshake only then, so nothing it answers
///   (PONG, ACK, NACK) goes before the WELCOME.
/// - `publish(user, message, data_json)`: numbers the message in the user's
///   stream if its type is numbered, remembers what it changes and sends it
///   to every device of the user (serialised once per protocol version;
///   `data_json` non-empty: relayed verbatim as `data`). With `id` and
///   `ack_to` (a v2 client message): answered with ACK on `ack_to`, and an id
///   seen before is answered with its first ACK instead. The last argument
///   is when the session received it (steady clock, ns), for the ACK
///   latency histogram.
/// - `trigger(user, message, idempotency_key)`: the same for the HTTP API;
///   answers the position (0 for a type that is not numbered); a key seen
///   before answers the first position without publishing again.
/// - `snapshot(user)`: what the hub remembers of the user, as of its top.
/// - For operators (the HTTP API), each covering every node: `head(user)`
///   (the stream's top, history bounds and the user's devices on every
///   node), `read(user, epoch, since, upto)`, `close(user, device, code,
///   reason)` (closes the device's sockets, or every socket of the user
///   when `device` is empty, on every node; answers how many (node, device)
///   connections were told) and `revoke(revocation)` (kept on every node,
///   then every socket of the user closed with 4002; the same count).
/// - `drain(quota)`: the node is drained: up to `quota` more sockets of
///   this shard are closed with 1001, and every socket that joins from now
///   on at once; answers how many sockets it still has that were not told
///   to close. `undrain`: joins stay open again (the closed sockets are
///   not called back).
/// - `revoked(user)`: the user's revocation changed on this node (an
///   operator's, another node's, or one loaded): each of its sockets checks
///   its token again, so that none with a revoked token stays open.
/// Frames go straight to each socket's transport; the session keeps the
/// control path.
using hub_actor = caf::typed_actor<
  caf::replies_to<join_atom, join_request, session_actor, link_actor>::with<bool>,
  caf::reacts_to<leave_atom, session_actor>,
  caf::reacts_to<publish_atom, std::string, msg::server_message, std::string>,
  caf::reacts_to<publish_atom, std::string, msg::server_message, std::string,
                 std::string, link_actor, int64_t>,
  caf::replies_to<trigger_atom, std::string, msg::server_message,
                  std::string>::with<uint64_t>,
  caf::replies_to<shutdown_atom, uint16_t, std::string>::with<bool>,
  caf::replies_to<snapshot_atom, std::string>::with<msg::user_state>,
  caf::replies_to<stats_atom>::with<hub_stats>,
  caf::replies_to<head_atom, std::string>::with<stream_head>,
  caf::replies_to<read_atom, std::string, std::string, uint64_t, uint64_t>::with<stream_range>,
  caf::replies_to<close_atom, std::string, std::string, uint16_t, std::string>::with<uint64_t>,
  caf::replies_to<revoke_atom, revocation>::with<uint64_t>,
  caf::replies_to<drain_atom, uint32_t>::with<uint64_t>,
  caf::reacts_to<undrain_atom>,
  caf::reacts_to<revoked_atom, std::string>>;

/// Closes every socket whose token expired unrefreshed with 4003, in one
/// sweep for all sockets (not a timer each).
/// - `watch(session, expires_at_ms)`: (re)arms the session's expiry.
/// - `unwatch(session)`: the session ended.
using token_watch_actor = caf::typed_actor<
  caf::reacts_to<watch_atom, session_actor, int64_t>,
  caf::reacts_to<unwatch_atom, session_actor>>;

} // namespace kullsync::server

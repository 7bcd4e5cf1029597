#pragma once

/// The cluster's broker, as the hub shards see it: it numbers and stores
/// every user's stream and fans each message out to every node that follows
/// the user. Redis behind it in production (redis_broker.hpp), the stream
/// core with seeded faults in the deterministic simulation (sim_broker.hpp).
/// A node alone runs the same stream core in process instead, behind the
/// same operations without a message hop (src/hub/hub_broker.hpp).
///
///   hub --publish--> broker --deliver--> hub of every node following the user
///   hub --follow (first local device) / unfollow (last one gone)--> broker
///   hub --read (a resume, a gap)--> broker
///
/// The types it speaks are in stream.hpp; their CAF inspection is here.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/common/atoms.hpp"
#include "kullsync/common/inspect_optional.hpp"
#include "kullsync/server/revocations.hpp"
#include "kullsync/server/stream.hpp"

namespace kullsync::server {

using follow_atom = caf::atom_constant<caf::atom("follow")>;
using unfollow_atom = caf::atom_constant<caf::atom("unfollow")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using resync_atom = caf::atom_constant<caf::atom("resync")>;
using head_atom = caf::atom_constant<caf::atom("head")>;
using alive_atom = caf::atom_constant<caf::atom("alive")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
using nodes_atom = caf::atom_constant<caf::atom("nodes")>;
using published_atom = caf::atom_constant<caf::atom("published")>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, presence_entry& x) {
  return f(caf::meta::type_name("presence_entry"), x.node, x.device, x.connected_at,
           x.protocol);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revocation& x) {
  return f(caf::meta::type_name("revocation"), x.user, x.before_ms, x.until_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_update& x) {
  return f(caf::meta::type_name("state_update"), x.field, x.terminal, x.rank, x.at,
           x.linger_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_change& x) {
  return f(caf::meta::type_name("state_change"), x.field, x.until, x.updated);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_request& x) {
  auto presence = detail::optional_field(x.presence);
  return f(caf::meta::type_name("publish_request"), x.user, x.origin, x.frame, x.numbered,
           x.dedup_key, x.state, presence, x.present, x.control, x.now);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_receipt& x) {
  return f(caf::meta::type_name("publish_receipt"), x.seq, x.epoch, x.duplicate);
}

/// A shared message crosses actors as the pointer it is; serialised (CAF
/// needs it to be serialisable), it is copied.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, message_ptr& x) {
  stream_message tmp;
  std::string user, epoch;
  if constexpr (Inspector::reads_state)
    if (x) {
      tmp = *x;
      user = x->user();
      epoch = x->epoch();
    }
  std::string frame = tmp.frame ? tmp.frame.str() : std::string{};
  auto presence = detail::optional_field(tmp.presence);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    tmp.key = make_key(std::move(user), std::move(epoch));
    tmp.frame = make_shared_frame(std::move(frame));
    x = std::make_shared<const stream_message>(std::move(tmp));
    return caf::none;
  });
  return f(caf::meta::type_name("stream_message"), user, tmp.seq, epoch, tmp.origin, frame,
           tmp.state, presence, tmp.present, tmp.control, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_frame& x) {
  return f(caf::meta::type_name("state_frame"), x.field, x.frame, x.until, x.updated);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_head& x) {
  return f(caf::meta::type_name("stream_head"), x.epoch, x.top, x.first, x.state, x.devices,
           x.devices_complete);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_range& x) {
  return f(caf::meta::type_name("stream_range"), x.epoch, x.complete, x.messages);
}

/// What a hub shard takes from the broker:
/// - `deliver(message)`: a message of a user it follows. The order is the
///   stream's, but the broker may lose some (the hub fills gaps by `read`).
/// - `resync()`: the broker lost its subscriptions (a reconnect): follow
///   every user again and fill what was missed.
/// - `published(ticket, receipt or error)`: the answer to its publish
///   `ticket`.
using stream_follower_actor = caf::typed_actor<
  caf::reacts_to<deliver_atom, message_ptr>,
  caf::reacts_to<resync_atom>,
  caf::reacts_to<published_atom, uint64_t, publish_receipt>,
  caf::reacts_to<published_atom, uint64_t, caf::error>>;

/// The broker. Every request may fail with an error naming the broker as
/// unavailable: the hub then refuses the publish (HTTP 503, NACK
/// unavailable) and keeps its sockets.
/// - `publish(request, ticket, follower)`: answered to `follower` with
///   `published(ticket, ...)`. Not a CAF request: a hub has thousands of
///   publishes under way at scale, and CAF 0.17 keeps a requester's pending
///   answers in a flat map that every answer searches and shifts.
/// - `follow(user, follower)` -> head, once the follower's subscription is
///   confirmed.
/// - `unfollow(user, follower)`: the last local device left.
/// - `read(user, epoch, since, upto)` -> range (since, upto] (upto past
///   the top: to the top).
/// - `head(user)` -> head, without following (a state query).
/// - `alive(node, ttl_ms)`: the node instance is alive for `ttl_ms` more;
///   the presence entries of an instance that stopped saying so are not
///   listed (a node killed without a goodbye).
/// - `revoke(revocation)`: kept, and given to every node's revocation list.
/// - `nodes()` -> what each live node says of itself (a JSON object each).
using broker_actor = caf::typed_actor<
  caf::reacts_to<publish_atom, publish_request, uint64_t, stream_follower_actor>,
  caf::replies_to<follow_atom, std::string, stream_follower_actor>::with<stream_head>,
  caf::reacts_to<unfollow_atom, std::string, stream_follower_actor>,
  caf::replies_to<read_atom, std::string, std::string, uint64_t, uint64_t>::with<
    stream_range>,
  caf::replies_to<head_atom, std::string>::with<stream_head>,
  caf::reacts_to<alive_atom, std::string, int64_t>,
  caf::replies_to<revoke_atom, revocation>::with<bool>,
  caf::replies_to<nodes_atom>::with<std::vector<std::string>>>;

/// Why a broker request failed (CAF error category "broker").
enum class broker_errc : uint8_t {
  unavailable = 1, // not connected, or refused: a publish did not happen
  bad_reply,       // it answered something this node cannot use
  /// A publish was sent and no answer came (the link went down): it may
  /// have happened, or happen still. Only a retry with the same dedup key
  /// (Idempotency-Key, a device's message id) is safe.
  outcome_unknown,
};

std::string to_string(broker_errc x);

/// A broker error with what happened in words (shown in logs).
caf::error make_error(broker_errc x, std::string detail = {});

/// Whether what failed with `e` may still have happened: the broker's
/// outcome_unknown, or an answer that did not come in time. Anything else
/// certainly did not happen (HTTP 503, NACK `unavailable`).
bool outcome_unknown(const caf::error& e);

} // namespace kullsync::server

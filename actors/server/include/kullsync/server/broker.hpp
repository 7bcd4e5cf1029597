#pragma once

/// The cluster's broker, as the hub shards see it: it numbers and stores
/// every user's stream and fans each message out to every node that follows
/// the user. Redis behind it in production (redis_broker.hpp), a simulated
/// one in the deterministic simulation (sim_broker.hpp): the hub speaks only
/// this interface.
///
///   hub --publish--> broker --deliver--> hub of every node following the user
///   hub --follow (first local device) / unfollow (last one gone)--> broker
///   hub --read (a resume, a gap)--> broker

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/common/atoms.hpp"
#include "kullsync/common/inspect_optional.hpp"

namespace kullsync::server {

using follow_atom = caf::atom_constant<caf::atom("follow")>;
using unfollow_atom = caf::atom_constant<caf::atom("unfollow")>;
using read_atom = caf::atom_constant<caf::atom("read")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using resync_atom = caf::atom_constant<caf::atom("resync")>;
using head_atom = caf::atom_constant<caf::atom("head")>;
using alive_atom = caf::atom_constant<caf::atom("alive")>;

/// A message on its way to a user's devices through the broker.
/// `frame` is its v1 text (no `seq`); a v2 frame is it with `seq` appended.
struct stream_message {
  std::string user;
  uint64_t seq = 0;   // its position; 0: a type that is not numbered
  std::string epoch;  // of the stream that numbered it ("" when not numbered)
  std::string origin; // the node that published it
  std::string frame;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_message& x) {
  return f(caf::meta::type_name("stream_message"), x.user, x.seq, x.epoch, x.origin,
           x.frame);
}

/// A device connected to one node, as the broker lists it for every node.
struct presence_entry {
  std::string node; // the node's instance (a restarted node is another one)
  std::string device;
  int64_t connected_at = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, presence_entry& x) {
  return f(caf::meta::type_name("presence_entry"), x.node, x.device, x.connected_at);
}

/// One publish: numbered (if `numbered`), stored, fanned out, and what it
/// changes of the user's state kept (`state_field`: "credits" or
/// "shoot:<id>"), all in one step. The field is replaced as every device's
/// shoot table does it (shoot_table::is_stale): a terminal value (a
/// finished shoot) always, and dropped `state_linger_ms` after it was
/// published (`state_now`, the publishing node's clock); over a terminal
/// one, a value not older than it (`state_at`, the message's timestamp);
/// else one whose `state_rank` (processed count) is not lower; -1: always.
/// A
/// `dedup_key` seen before answers the first
/// position and publishes nothing. A presence message (DEVICE_CONNECTED /
/// DISCONNECTED, not numbered) adds (`present`) or removes `device` of the
/// publishing node in the user's presence list.
struct publish_request {
  stream_message msg;
  bool numbered = false;
  std::string dedup_key;
  std::string state_field;
  bool state_terminal = false;
  int64_t state_rank = -1;
  int64_t state_at = 0;        // the message's timestamp
  int64_t state_now = 0;       // the publishing node's wall clock (ms)
  int64_t state_linger_ms = 0; // a terminal value's lifetime
  std::optional<presence_entry> presence;
  bool present = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_request& x) {
  auto presence = detail::optional_field(x.presence);
  return f(caf::meta::type_name("publish_request"), x.msg, x.numbered, x.dedup_key,
           x.state_field, x.state_terminal, x.state_rank, x.state_at, x.state_now,
           x.state_linger_ms,
           presence, x.present);
}

/// The broker's answer to a publish.
struct publish_receipt {
  uint64_t seq = 0;
  std::string epoch;
  bool duplicate = false; // the dedup key was seen: `seq` is the first answer's
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, publish_receipt& x) {
  return f(caf::meta::type_name("publish_receipt"), x.seq, x.epoch, x.duplicate);
}

/// One frame of what a user's state is made of, and until when it is
/// shown (wall ms; 0: until replaced): a finished shoot lingers a while.
struct state_frame {
  std::string frame;
  int64_t until = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_frame& x) {
  return f(caf::meta::type_name("state_frame"), x.frame, x.until);
}

/// Where a user's stream stands, read once the node is subscribed to it, so
/// every message after `top` will be delivered: its epoch, its top position
/// and the frames of what the user's state is made of (the last credit
/// update, the shoots in progress or just finished), with the user's
/// devices on every live node.
struct stream_head {
  std::string epoch;
  uint64_t top = 0;
  std::vector<state_frame> state;
  std::vector<presence_entry> devices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_head& x) {
  return f(caf::meta::type_name("stream_head"), x.epoch, x.top, x.state, x.devices);
}

/// A read of the stream: the frames after `since` up to `upto`, oldest
/// first, with `complete` false when the stream no longer holds all of them
/// (evicted, another epoch): all or nothing.
struct stream_range {
  std::string epoch;
  bool complete = false;
  std::vector<stream_message> messages;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_range& x) {
  return f(caf::meta::type_name("stream_range"), x.epoch, x.complete, x.messages);
}

/// What a hub shard takes from the broker:
/// - `deliver(message)`: a message of a user it follows. The order is the
///   stream's, but the broker may lose some (the hub fills gaps by `read`).
/// - `resync()`: the broker lost its subscriptions (a reconnect): follow
///   every user again and fill what was missed.
using stream_follower_actor = caf::typed_actor<
  caf::reacts_to<deliver_atom, stream_message>,
  caf::reacts_to<resync_atom>>;

/// The broker. Every request may fail with `sec::request_timeout` or an
/// error naming the broker as unavailable: the hub then refuses the publish
/// (HTTP 503, NACK unavailable) and keeps its sockets.
/// - `publish(request)` -> receipt.
/// - `follow(user, follower)` -> head, once the follower's subscription is
///   confirmed.
/// - `unfollow(user, follower)`: the last local device left.
/// - `read(user, epoch, since, upto)` -> range (since, upto] (upto past
///   the top: to the top).
/// - `head(user)` -> head, without following (a state query).
/// - `alive(node, ttl_ms)`: the node instance is alive for `ttl_ms` more;
///   the presence entries of an instance that stopped saying so are not
///   listed (a node killed without a goodbye).
using broker_actor = caf::typed_actor<
  caf::replies_to<publish_atom, publish_request>::with<publish_receipt>,
  caf::replies_to<follow_atom, std::string, stream_follower_actor>::with<stream_head>,
  caf::reacts_to<unfollow_atom, std::string, stream_follower_actor>,
  caf::replies_to<read_atom, std::string, std::string, uint64_t, uint64_t>::with<
    stream_range>,
  caf::replies_to<head_atom, std::string>::with<stream_head>,
  caf::reacts_to<alive_atom, std::string, int64_t>>;

/// Why a broker request failed (CAF error category "broker").
enum class broker_errc : uint8_t {
  unavailable = 1, // not connected, or it does not answer
  bad_reply,       // it answered something this node cannot use
};

std::string to_string(broker_errc x);

/// A broker error with what happened in words (shown in logs).
caf::error make_error(broker_errc x, std::string detail = {});

/// Appends `seq` to a v1 frame: the v2 frame of a numbered message (`seq`
/// is the envelope's last field in both encoders).
std::string with_seq(const std::string& v1_frame, uint64_t seq);

} // namespace kullsync::server

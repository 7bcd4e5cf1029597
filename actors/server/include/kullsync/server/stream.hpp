#pragma once

/// A user's stream (v2) as every part of the server sees it: what a publish
/// asks, what it answers, what a message carries to the nodes that follow
/// the user, and what a node reads back. The rules behind them live in one
/// stream core (src/stream/stream_core.hpp), which a node alone runs in
/// process and the cluster's Redis scripts mirror. Plain C++: no CAF (CAF's
/// inspection of these types is in broker.hpp).
///
/// Positions (`seq`) are comparable only within an epoch. An epoch is opaque
/// and changes whenever a stream's history was lost (a restarted node alone,
/// a Redis restarted empty or failed over), so a device never trusts a
/// position of another.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kullsync/transports/frame.hpp"

namespace kullsync::server {

/// A device connected to one node, as the stream lists it for every node.
struct presence_entry {
  std::string node; // the node's instance (a restarted node is another one)
  std::string device;
  int64_t connected_at = 0;
  int protocol = 1; // 1 or 2: what the device's socket there speaks
};

/// What a numbered message changes of the user's state (what a SNAPSHOT is
/// made of): `field` is "credits" or "shoot:<id>"; "" for nothing.
///
/// The rule, in one place (state_table.hpp, and the Redis script that
/// mirrors it): a terminal value (a finished shoot) always replaces, and
/// leaves `linger_ms` after it was written; over a terminal one, a value
/// not older than it (`at`, the message's timestamp; 0 unknown) replaces;
/// otherwise one whose `rank` (the processed count) is not lower; rank -1
/// always replaces.
struct state_update {
  std::string field;
  bool terminal = false;
  int64_t rank = -1;
  int64_t at = 0;
  int64_t linger_ms = 0;
};

/// How a message did change the state, as the stream judged it: followers
/// copy it without judging again (and without decoding the frame).
/// `field` is empty when the message changed nothing (not a state message,
/// or stale).
struct state_change {
  std::string field;
  int64_t until = 0;   // a terminal value's end of linger (0: none)
  int64_t updated = 0; // the writer's clock (ms): the least recently updated
                       // field is the first to go past the cap
};

/// One publish: numbered (if `numbered`), stored, fanned out, and what it
/// changes of the state kept, all in one step. A `dedup_key` seen before in
/// the stream's epoch answers the first position and publishes nothing (a
/// stream that lost its history takes it again, once in its new epoch). A
/// presence message (DEVICE_CONNECTED / DISCONNECTED, not numbered) adds
/// (`present`) or removes `presence` in the user's list of devices; a node
/// announces its own devices only (`presence->node` is `origin`).
struct publish_request {
  std::string user;
  std::string origin;  // the publishing node's instance
  std::string frame;   // the v1 text (no `seq`)
  bool numbered = false;
  std::string dedup_key;
  state_update state;
  std::optional<presence_entry> presence;
  bool present = false;
  /// An order to the nodes that follow the user (`frame` is its JSON, e.g.
  /// to close sockets): fanned out, never stored or sent to a device.
  bool control = false;
  int64_t now = 0; // the publishing node's wall clock (ms)
};

/// The stream's answer to a publish.
struct publish_receipt {
  uint64_t seq = 0;
  std::string epoch;
  bool duplicate = false; // the dedup key was seen: `seq` is the first answer's
};

/// Whose stream a message is of, and in which epoch: one per stream (or
/// per channel message), shared by its messages, so a message copies
/// neither.
struct stream_key {
  std::string user;
  std::string epoch;
};

using key_ptr = std::shared_ptr<const stream_key>;

inline key_ptr make_key(std::string user, std::string epoch) {
  return std::make_shared<const stream_key>(stream_key{std::move(user), std::move(epoch)});
}

/// A message of a user's stream on its way to the nodes that follow the
/// user: built once where it enters a node (a publish here, a channel
/// message from Redis) and shared, immutable, by everything that sends it.
struct stream_message {
  key_ptr key;       // the user, and the epoch of the stream that numbered it
  uint64_t seq = 0;  // its position; 0: a type that is not numbered
  std::string origin; // the node that published it (may be empty when numbered)
  /// What a v2 socket gets: the envelope with `seq` as its last field when
  /// numbered. A v1 socket gets it without (v1_frame()).
  shared_frame frame;
  state_change state;
  std::optional<presence_entry> presence;
  bool present = false;
  bool control = false; // an order to the nodes (publish_request::control)

  const std::string& user() const { return key->user; }
  const std::string& epoch() const { return key->epoch; }
};

using message_ptr = std::shared_ptr<const stream_message>;

/// One value of the user's state: its frame (v1 text) and until when it is
/// shown (wall ms; 0: until replaced).
struct state_frame {
  std::string field;
  std::string frame;
  int64_t until = 0;
  int64_t updated = 0;
};

/// Where a user's stream stands: its epoch, its top position, what the
/// user's state is made of and the user's devices on every live node. Read
/// by a follower once it is subscribed, so every message after `top`
/// reaches it.
struct stream_head {
  std::string epoch;
  uint64_t top = 0;
  uint64_t first = 0; // the oldest position the history holds (0: none)
  std::vector<state_frame> state;
  std::vector<presence_entry> devices;
  /// False while the nodes' liveness keys may have lapsed unseen (shortly
  /// after the broker was out of reach for longer than they live): a
  /// device missing from `devices` may still be there, its node not yet
  /// heard again.
  bool devices_complete = true;
};

/// A read of the stream: the messages after `since` up to `upto`, oldest
/// first, with `complete` false when the stream no longer holds all of them
/// (evicted, another epoch): all or nothing.
struct stream_range {
  std::string epoch;
  bool complete = false;
  std::vector<message_ptr> messages;
};

/// The keys a stream remembers what it took under, so that a resent message
/// is answered with its first position instead of being applied twice. A
/// device's message ids are its own (two devices may both send id "1"), and
/// the backend's Idempotency-Keys are a namespace of their own (no id a
/// device sends can match one), one per type of message: a retry is
/// answered with the first answer, and a key used again for another
/// trigger is another publish (answered with its own position).
std::string client_dedup_key(std::string_view device, std::string_view id);
std::string backend_dedup_key(std::string_view type, std::string_view idempotency_key);

/// The v2 text of a v1 envelope numbered `seq` (`seq` is the envelope's
/// last field in both encoders: appended in place), and back.
std::string with_seq(std::string v1_frame, uint64_t seq);
std::string without_seq(std::string_view v2_frame, uint64_t seq);

/// The frame a v1 socket gets for `m` (a copy only when `m` is numbered).
shared_frame v1_frame(const stream_message& m);

/// A message built from its parts: the v2 frame made once here.
message_ptr make_message(key_ptr key, uint64_t seq, std::string origin, std::string v1_text,
                         state_change state = {},
                         std::optional<presence_entry> presence = {}, bool present = false,
                         bool control = false);
inline message_ptr make_message(std::string user, uint64_t seq, std::string epoch,
                                std::string origin, std::string v1_text,
                                state_change state = {},
                                std::optional<presence_entry> presence = {},
                                bool present = false, bool control = false) {
  return make_message(make_key(std::move(user), std::move(epoch)), seq, std::move(origin),
                      std::move(v1_text), std::move(state), std::move(presence), present,
                      control);
}

} // namespace kullsync::server

#pragma once

// Private to the server: a hub shard's state and the steps its files share.
// A hub shard follows the streams of its users that have sockets on this
// node through a hub_broker (a node alone's stream core in process, or a
// cluster's broker actor) and keeps their sockets:
//   hub.cpp          the actor: messages wired to the steps below
//   hub_streams.cpp  following streams (the stream_follower's effects)
//   hub_sockets.cpp  a socket's start (WELCOME, replay or SNAPSHOT), its
//                    leaving, publishes and ACKs
//   hub_presence.cpp this node's devices told to the broker, the others'
//                    tracked (user_registry.hpp)

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "../server_actors.hpp"
#include "hub_broker.hpp"
#include "kullsync/log.hpp"
#include "user_registry.hpp"

namespace kullsync::server {

/// A client message's ACK, due once its position was sent here.
struct pending_ack {
  std::string id;
  uint64_t seq = 0;
  link_actor to;
  int64_t received_ns = 0; // steady clock, for the ACK latency histogram
};

struct hub_state {
  server_config cfg;
  wall_clock clock;
  std::unique_ptr<hub_broker> broker;
  // Hashed: with tens of thousands of users, a sorted map's comparisons miss
  // cache on every message (nothing needs them in order).
  std::unordered_map<std::string, user_entry> users;
  std::unordered_map<caf::actor_addr, std::string> by_session; // session -> its user
  // Joins answered once their socket started (WELCOME sent): until then the
  // session does not complete the handshake, so nothing it would answer
  // (PONG, ACK, NACK) can go before the WELCOME. Only while a head is read.
  std::unordered_map<caf::actor_addr, caf::typed_response_promise<bool>> joining;
  std::unordered_map<uint64_t, pending_ack> acks;     // by ticket
  // Users whose presence announcement failed (may name a user twice, or one
  // gone): the sweep retries these, not a walk of every user.
  std::vector<std::string> presence_retry;
  uint64_t next_ticket = 0;
  uint64_t generations = 0; // of follows, so that stale answers are ignored
  std::shared_ptr<server_counters> counters; // the server's (may be null)
  hub_stats stats;
  // Shutdown: answered once every socket left and the broker heard of it.
  // While draining, a socket that still joins is closed like the others,
  // and presence changes that failed are retried at once, not at the sweep.
  std::vector<caf::typed_response_promise<bool>> drain_waiters;
  std::optional<std::pair<uint16_t, std::string>> draining; // the close code
  // An operator's drain (the node goes on): joins are closed at once and
  // the open sockets a quota at a time (drain_some).
  bool shedding = false;
  bool redrain_pending = false;
  std::shared_ptr<spdlog::logger> log = log::get("server.hub");
  static inline const char* name = "kullsync.hub";
};

using hub_ptr = hub_impl::stateful_pointer<hub_state>;

inline stream_follower_actor me_as_follower(hub_ptr self) {
  return caf::actor_cast<stream_follower_actor>(self);
}

/// The user's entry if this node follows the user's stream (answers to a
/// request may come after the last device left).
inline user_entry* followed(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  return i != self->state.users.end() && i->second.stream ? &i->second : nullptr;
}

// hub.cpp
int64_t now_ms(hub_ptr self);
/// The join of `session`, if it waits for its socket to start, answered.
void answer_join(hub_ptr self, const caf::actor_addr& session);
void send_frame(hub_ptr self, device_socket& s, const shared_frame& f);
/// Every socket of `u` but `except` gets `f`.
void send_all(hub_ptr self, user_entry& u, const shared_frame& f,
              const device_socket* except = nullptr);
shared_frame device_frame(msg::server_type type, const std::string& user,
                          const std::string& device, int64_t ts);
shared_frame control_frame(hub_ptr self, msg::server_type type, msg::server_body body);
/// Closes a socket that is going (the session closes its link).
void close_socket(hub_ptr self, device_socket& s, uint16_t code, const char* reason);
/// Closes the socket `who` of `user` that just joined (see close_socket).
void close_joined(hub_ptr self, const std::string& user, const caf::actor_addr& who,
                  uint16_t code, const char* reason);
/// Forgets a user with nothing left here (no socket, no follow, nothing
/// the broker still has to be told).
void forget_if_done(hub_ptr self, const std::string& user);
void erase_user(hub_ptr self, decltype(hub_state::users)::iterator i);

// hub_streams.cpp
/// Follows (again) the user's stream (`fresh`: what the node has of it is
/// replaced by the head); answers to earlier follows are ignored.
void follow(hub_ptr self, const std::string& user, user_entry& u, bool fresh);
/// The stream cannot be kept continuous here: v2 sockets closed with 4009,
/// followed afresh.
void reset_stream(hub_ptr self, const std::string& user, user_entry& u, const char* why);
/// The user's last socket left: the stream is no longer followed here.
void drop_stream(hub_ptr self, const std::string& user, user_entry& u);
void on_message(hub_ptr self, const message_ptr& m);
/// The broker resubscribed: every followed stream is followed again and
/// what was missed is read.
void resync(hub_ptr self);
/// Retries a follow that failed, unless another one was made since.
void refollow(hub_ptr self, const std::string& user, uint64_t generation, bool fresh);
/// Position checks of the followed streams that are due.
void check_positions(hub_ptr self, int64_t now);
/// Carries out what the follower says (apply, ACKs, read, reset).
void carry_out(hub_ptr self, const std::string& user, user_entry& u,
               stream_follower::effects fx);

// hub_sockets.cpp
/// What a join came to: refused (the user's socket cap), the socket
/// started (its WELCOME or DEVICE_CONNECTED sent), or waiting for its
/// user's head (read from the broker) to start.
enum class join_outcome : uint8_t { refused, started, waiting };
/// Registers a socket and starts it when its user's head is at hand.
join_outcome join(hub_ptr self, const join_request& req, session_actor who,
                  link_actor socket);
/// A session's socket leaves its user (the session said so, or died).
void leave(hub_ptr self, const caf::actor_addr& who);
/// Starts a socket once its user's head is known: v1 hears of itself; v2
/// gets WELCOME and its replay or a SNAPSHOT.
void start_socket(hub_ptr self, const std::string& user, user_entry& u, device_socket& me);
/// The user's socket of `session`, if it is still there.
device_socket* socket_of(user_entry& u, const caf::actor_addr& session);
/// Publishes `m` through the broker; `done(receipt)` once numbered (seq 0:
/// not numbered), `failed(err)` when the broker refuses or does not answer.
void publish(hub_ptr self, const std::string& user, const msg::server_message& m,
             const std::string& data_json, std::string dedup_key,
             std::function<void(const publish_receipt&)> done,
             std::function<void(const caf::error&)> failed);
/// ACKs a client message once its position was sent here.
void ack_when_applied(hub_ptr self, const std::string& user, pending_ack a,
                      const publish_receipt& r);
void send_ack(hub_ptr self, uint64_t ticket);
/// A client message the broker did not store: NACK `unavailable` when it
/// certainly did not; when that is unknown, its socket is closed (1013).
void refuse_unstored(hub_ptr self, const std::string& id, const link_actor& to,
                     const caf::error& why);
/// What this node has of `user` (followed), else the broker's head.
caf::result<msg::user_state> user_snapshot(hub_ptr self, const std::string& user);

// hub_presence.cpp
/// Brings the broker's list of this node's devices of `user` to what is
/// here (and forgets a user with no socket once that is done).
void announce(hub_ptr self, const std::string& user);
/// Retries the announcements that failed.
void retry_failed_announcements(hub_ptr self);
/// Answers the shutdown's waiters (true) once no socket is left and no
/// presence change is unanswered or unsent.
void check_drained(hub_ptr self);
/// Closes up to `quota` sockets not yet told to close (an operator's
/// drain); answers how many such sockets are left.
uint64_t drain_some(hub_ptr self, uint32_t quota);
/// A presence message of another node: tracked, told to the sockets when
/// the device arrived or left for good.
void remote_presence(hub_ptr self, user_entry& u, const stream_message& m);
/// Replaces what this node knows of the other nodes' devices with the
/// broker's list, telling the sockets what changed.
void remote_devices(hub_ptr self, const std::string& user, user_entry& u,
                    const std::vector<presence_entry>& list, bool complete);

// hub_operators.cpp
/// Carries out an operator's order that came in the user's stream.
void carry_out_order(hub_ptr self, user_entry& u, const stream_message& m);
/// Closes `device`'s sockets ("" every socket) of `user` on every node.
caf::result<uint64_t> close_sockets(hub_ptr self, const std::string& user,
                                    const std::string& device, uint16_t code,
                                    const std::string& reason);
caf::result<uint64_t> revoke(hub_ptr self, const revocation& r);
/// The user's revocation changed on this node: each of its sockets here
/// checks its token again.
void recheck_tokens(hub_ptr self, const std::string& user);

// hub_brokers.cpp
std::unique_ptr<hub_broker> make_local_broker(hub_ptr self, const std::string& epoch_prefix);
std::unique_ptr<hub_broker> make_actor_broker(hub_ptr self, broker_actor b);

} // namespace kullsync::server

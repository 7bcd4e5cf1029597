#pragma once

// Private to the server: a hub shard's state and the steps shared by its
// two halves, hub.cpp (the registry, what it remembers, a node alone) and
// hub_cluster.cpp (a node following its users' streams through a broker).

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_cast.hpp>

#include "client_ids.hpp"
#include "kullsync/common/shoot_table.hpp"
#include "kullsync/log.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

struct device_socket {
  std::string device_id;
  session_actor session;
  transport_actor socket;
  int64_t connected_at = 0;
  bool v2 = false;
  /// Cluster: waiting for its user's stream head (then started with
  /// `start`), or for a replay (frames for it are `held` until then).
  std::unique_ptr<join_request> start;
  bool holding = false;
  std::vector<shared_frame> held;
  bool closing = false; // told to close (4009): nothing more goes to it
};

/// Cluster: where this node stands in one user's stream. Messages are
/// applied strictly in order; one that arrives early waits in `ahead` while
/// the gap is read from the broker.
struct stream_follow {
  bool live = false;       // the head arrived (else: a follow is out)
  uint64_t generation = 0; // of the follow, so that stale answers are ignored
  std::string epoch;
  uint64_t seq = 0;        // the last position applied
  std::map<uint64_t, stream_message> ahead;
  bool filling = false;    // a read is out
  int64_t checked_ms = 0;  // the last position check
  /// ACKs of this node's client messages wait until their position was
  /// sent to the user's sockets, as a node alone does.
  struct waiting_ack {
    uint64_t seq;
    std::string epoch;
    std::string id;
    transport_actor to;
    int64_t received_ns;
  };
  std::vector<waiting_ack> acks;
};

struct user_entry {
  std::vector<device_socket> sockets;
  // The last CREDIT_UPDATE; on the heap, as most users connected now have
  // none and an idle user entry should stay small.
  std::unique_ptr<msg::credit_update> credits;
  shoot_table shoots;
  int64_t last_update_ms = 0; // of what the hub remembers
  size_t bytes = 0;           // estimate of what it remembers
  std::unique_ptr<stream_follow> follow; // cluster only
  /// Cluster: devices on other nodes, by (node instance, device): a device
  /// that moved is on the new node before the old one says it left.
  std::map<std::pair<std::string, std::string>, int64_t> remote_devices;
  /// Cluster: what the broker was told of this node's devices.
  struct announced_presence {
    std::set<std::string> announced;
    int in_flight = 0;
    bool dirty = false; // an announcement failed: retried by the sweep
  } presence;
};

struct hub_state {
  server_config cfg;
  wall_clock clock;
  std::map<std::string, user_entry> users;
  std::map<caf::actor_addr, std::string> by_session; // session -> its user
  std::unique_ptr<history_store> history; // a node alone
  std::unique_ptr<client_ids> ids;        // a node alone
  std::shared_ptr<server_counters> counters; // the server's (may be null)
  uint64_t generations = 0;
  hub_stats stats;
  std::shared_ptr<spdlog::logger> log = log::get("server.hub");
  static inline const char* name = "kullsync.hub";

  bool clustered() const { return cfg.cluster.broker != nullptr; }
};

using hub_ptr = hub_impl::stateful_pointer<hub_state>;

// hub.cpp
int64_t now_ms(hub_ptr self);
void send_frame(hub_ptr self, device_socket& s, const shared_frame& f);
shared_frame device_frame(msg::server_type type, const std::string& user,
                          const std::string& device, int64_t ts);
shared_frame control_frame(hub_ptr self, msg::server_type type, msg::server_body body);
shared_frame encode_for(const msg::server_message& m, const std::string& data_json,
                        std::optional<uint64_t> seq);
/// Whether another socket of `u` than `except` on this node belongs to
/// `device`: a device with several sockets (an app and its extension, a
/// reconnect that overtook the old socket's close) is connected until its
/// last one leaves.
bool device_here(const user_entry& u, const std::string& device,
                 const device_socket* except);
/// The same on any node (a cluster's other nodes as their presence says).
bool device_present(const user_entry& u, const std::string& device,
                    const device_socket* except);
void remember(hub_ptr self, user_entry& u, const std::string& user,
              const msg::server_message& m);
/// What the hub remembers of `user`, as of the position it applied.
msg::user_state snapshot(hub_ptr self, const std::string& user);
void erase_user(hub_ptr self, std::map<std::string, user_entry>::iterator i);
/// WELCOME for `me` at (epoch, seq), then SNAPSHOT unless `recovered`.
void welcome(hub_ptr self, const join_request& req, user_entry& u, device_socket& me,
             const std::string& epoch, uint64_t seq, bool recovered);
void ack(hub_ptr self, const std::string& id, uint64_t seq, const transport_actor& to,
         int64_t received_ns);


// hub_alone.cpp: a node alone numbers itself.
uint64_t alone_publish(hub_ptr self, const std::string& user, const msg::server_message& m,
                       const std::string& data_json);
void alone_welcome(hub_ptr self, const join_request& req, user_entry& u, device_socket& me);
void alone_publish_acked(hub_ptr self, const std::string& user, const msg::server_message& m,
                         const std::string& data_json, const std::string& id,
                         const transport_actor& ack_to, int64_t received_ns);
uint64_t alone_trigger(hub_ptr self, const std::string& user, const msg::server_message& m,
                       const std::string& idempotency_key);
/// Every socket of `u` but `except` gets `f`.
void deliver(hub_ptr self, user_entry& u, const shared_frame& f,
             const device_socket* except = nullptr);
void forget_if_empty(hub_ptr self, const std::string& user);
std::vector<msg::device_connection> devices_of(const user_entry& u);
/// Past the node's memory bound, the users idle longest are forgotten.
void enforce_memory(hub_ptr self);

// -- a cluster (hub_cluster.cpp, hub_stream.cpp, hub_presence.cpp) --------------

inline const broker_actor& broker(hub_ptr self) {
  return self->state.cfg.cluster.broker;
}

inline stream_follower_actor me_as_follower(hub_ptr self) {
  return caf::actor_cast<stream_follower_actor>(self);
}

/// The user's entry if this node still follows its stream (answers to a
/// request may come after the last device left).
inline user_entry* followed(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  return i != self->state.users.end() && i->second.follow ? &i->second : nullptr;
}

// hub_stream.cpp
/// Subscribes (again) to the user's stream (`fresh`: what the node
/// remembers is replaced by the head); earlier answers are ignored.
void cluster_follow(hub_ptr self, const std::string& user, user_entry& u, bool fresh);
/// The stream cannot be kept continuous here: v2 sockets closed with 4009,
/// followed afresh.
void cluster_reset(hub_ptr self, const std::string& user, user_entry& u, const char* why);
/// A state frame of a head, unless it is a finished shoot past its linger.
bool cluster_still_shown(hub_ptr self, const state_frame& s);
// hub_cluster.cpp
/// Starts a socket once its user's head is known (WELCOME, replay or
/// SNAPSHOT; presence).
void cluster_start(hub_ptr self, const std::string& user, user_entry& u, device_socket& me);

/// A socket registered in `u`: follows the user's stream if it is the
/// first, and starts the socket once the head is known.
void cluster_joined(hub_ptr self, const std::string& user, user_entry& u,
                    device_socket& me);
/// A socket left: other nodes hear of its device if it was the last one;
/// the last local socket stops following the stream.
void cluster_left(hub_ptr self, std::map<std::string, user_entry>::iterator i);
/// Publishes through the broker; `done(receipt)` once it is numbered (seq
/// 0: not numbered), `failed(err)` when the broker refuses or does not answer.
void cluster_publish(hub_ptr self, const std::string& user, const msg::server_message& m,
                     const std::string& data_json, std::string dedup_key,
                     std::function<void(const publish_receipt&)> done,
                     std::function<void(const caf::error&)> failed);
/// ACKs a client message once its position was sent here; not at all when
/// the broker numbered it in another epoch than the one this node serves
/// (the stream changed: the devices resume and resend).
void cluster_ack(hub_ptr self, const std::string& user, const std::string& id,
                 const publish_receipt& r, const transport_actor& to, int64_t received_ns);
void cluster_deliver(hub_ptr self, stream_message& m);
void cluster_resync(hub_ptr self);
/// Retries a follow that failed, unless another one was made since.
void cluster_refollow(hub_ptr self, const std::string& user, uint64_t generation,
                      bool fresh);
void cluster_check(hub_ptr self, int64_t now);
/// /state: what this node holds of a user it follows, else the broker's.
caf::result<msg::user_state> cluster_snapshot(hub_ptr self, const std::string& user);
// hub_presence.cpp
/// Brings the broker's list of this node's devices of `user` to what is
/// here (and forgets a user with no socket once that is done).
void cluster_announce(hub_ptr self, const std::string& user);
/// Retries the announcements that failed.
void cluster_announce_dirty(hub_ptr self);
/// A presence message of another node: tracked; true if this node's
/// sockets should hear of it (the device arrived or left for good).
bool cluster_track_presence(hub_ptr self, user_entry& u, const std::string& origin,
                            std::string_view frame);
/// Replaces what this node knows of the other nodes' devices with the
/// broker's list, telling the sockets what changed.
void cluster_remote_devices(hub_ptr self, const std::string& user, user_entry& u,
                            const std::vector<presence_entry>& list);

/// The position of `user`'s stream this node has applied.
uint64_t cluster_top(hub_ptr self, const std::string& user);

} // namespace kullsync::server

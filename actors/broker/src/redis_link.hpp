#pragma once

// Private to the broker: the broker actor's state, and the links to each
// Redis instance (redis_link.cpp: connecting, commands, subscriptions, the
// liveness probe); redis_broker.cpp answers the hubs' requests with them.

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "kullsync/broker/redis_broker.hpp"
#include "kullsync/common/log_throttle.hpp"
#include "kullsync/log.hpp"
#include "kullsync/metrics.hpp"
#include "broker_clock.hpp"
#include "probe_watch.hpp"
#include "redis_value.hpp"

namespace kullsync::broker {

class redis_connection;

using reply_atom = caf::atom_constant<caf::atom("reply")>;
using link_atom = caf::atom_constant<caf::atom("redislink")>;
using channel_atom = caf::atom_constant<caf::atom("channel")>;
using confirm_atom = caf::atom_constant<caf::atom("confirm")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using flush_publishes_atom = caf::atom_constant<caf::atom("flushpub")>;
using sentinel_atom = caf::atom_constant<caf::atom("sentinel")>;
using switched_atom = caf::atom_constant<caf::atom("switched")>;

/// The broker, plus what its connections report (reply to command `id`;
/// link (instance, subscriber?, generation) up or down; a message on a
/// channel; a subscription confirmed on a subscriber link of a generation;
/// a sentinel link (instance, generation) up or down; a sentinel's
/// +switch-master) and its timer.
using broker_impl = server::broker_actor::extend<
  caf::reacts_to<reply_atom, uint64_t, redis_value>,
  caf::reacts_to<link_atom, uint32_t, bool, uint64_t, bool, std::string>,
  caf::reacts_to<channel_atom, uint32_t, std::string, std::string>,
  caf::reacts_to<confirm_atom, uint32_t, uint64_t, std::string>,
  caf::reacts_to<sentinel_atom, uint32_t, uint64_t, bool, std::string>,
  caf::reacts_to<switched_atom, uint32_t, uint64_t, std::string>,
  caf::reacts_to<tick_atom>,
  caf::reacts_to<flush_publishes_atom>>;

/// The broker's metrics, each once: member, kind, exposition name, help,
/// label. /metrics and the tests read this list.
#define KULLSYNC_BROKER_METRICS(X)                                                \
  X(shards, gauge, "kullsync_broker_instances", "Redis instances configured", "") \
  X(ready_shards, gauge, "kullsync_broker_instances_ready",                      \
    "Redis instances connected, subscribed and with their scripts", "")           \
  X(subscriptions, gauge, "kullsync_broker_subscriptions",                       \
    "Pub/sub channels this node is subscribed to", "")                            \
  X(publishes, counter, "kullsync_broker_publishes_total",                       \
    "Publishes the broker numbered and fanned out", "")                           \
  X(publish_calls, none, "", "script calls: a batch each", "")                   \
  X(publish_failures, counter, "kullsync_broker_publish_failures_total",         \
    "Publishes refused: instance not ready, or an error reply", "")               \
  X(messages, counter, "kullsync_broker_messages_total",                         \
    "Pub/sub messages received for followed users", "")                           \
  X(bad_messages, counter, "kullsync_broker_bad_messages_total",                 \
    "Pub/sub messages that did not parse", "")                                    \
  X(reconnects, counter, "kullsync_broker_reconnects_total",                     \
    "Links to Redis lost after they connected (answered or not)", "")                                     \
  X(probe_timeouts, counter, "kullsync_broker_probe_timeouts_total",             \
    "Subscriber links dropped because their probe did not come back", "")         \
  X(probes_late, counter, "kullsync_broker_probes_late_total",                    \
    "Probes back past their patience: links behind a backlog, kept", "")

KULLSYNC_METRIC_GROUP(broker_metrics, KULLSYNC_BROKER_METRICS)

/// What the broker object, the actor and /metrics share: the metrics as
/// atomics, the publish latency, and the links.
struct redis_broker::shared : broker_metrics<std::atomic<uint64_t>> {
  std::atomic<boost::asio::io_context*> io{nullptr};
  caf::execution_unit* unit = nullptr; // the io thread's bridge (set before `io`)
  metrics::histogram publish_latency{metrics::histogram::latency_seconds};
  std::mutex mtx; // guards `connections`
  /// The current links (per instance: command 0, subscriber 1, sentinel
  /// 2), for stop().
  std::map<std::pair<uint32_t, int>, std::shared_ptr<redis_connection>> connections;
  /// The revocations in force were read since the subscriber last
  /// confirmed their channel (or the node keeps none): until then the node
  /// is not ready, since it would take a revoked token.
  std::atomic<bool> revocations_known{false};
};

enum class script : uint8_t { publish, head, read };

/// A publish waiting for its batch's script call.
struct pending_publish {
  server::publish_request req;
  uint64_t ticket = 0;              // the hub's, to answer with
  server::stream_follower_actor to; // the hub
  std::chrono::steady_clock::time_point started;
};

/// One Redis instance: a command link and a subscriber link.
struct shard_link {
  std::vector<pending_publish> batch; // publishes of this broker turn
  uint32_t index = 0;
  redis_endpoint at; // with Sentinel: host and port are the master's last known
  std::shared_ptr<redis_connection> cmd, sub;
  bool cmd_up = false, sub_up = false;
  bool cmd_connecting = false, sub_connecting = false;
  uint64_t cmd_gen = 0, sub_gen = 0; // reports of older links are ignored
  int64_t cmd_since_ms = 0, sub_since_ms = 0; // when each came up
  int64_t last_heard_ms = 0; // when Redis last answered (ready, a probe back)
  int64_t outage_ms = 0;     // how long since then, when the command link came up
  bool sub_was_up = false;   // the next subscription is a resubscription
  bool resubscribed = false; // hubs must read what they missed
  std::string run;           // Redis' mastership (mastership_of); empty: not asked yet
  uint64_t replica_gen = 0;  // the command link found a replica (READONLY)
  int64_t replica_since_ms = 0; // since when (its PING behind is bounded)
  std::array<std::string, 3> sha;
  size_t scripts_loaded = 0;
  std::set<std::string> asked, confirmed; // channels
  std::string probe_channel;
  probe_watch probe;

  // With Sentinel (redis_sentinel.cpp): a link to one sentinel, which says
  // where the master is and then tells of its failovers.
  std::shared_ptr<redis_connection> sentinel;
  bool sentinel_up = false, sentinel_connecting = false;
  uint64_t sentinel_gen = 0;
  size_t next_sentinel = 0;     // tried in turn
  bool master_known = false;    // `at` is where the sentinels last said
  bool role_checked = false;    // the command link's peer said it is a master
  uint64_t left_gen = 0;        // the command link this node dropped to move
  uint64_t explained_gen = 0;   // the command link dropped for a reason already logged
  // What repeats each tick is said once in a while.
  log_throttle sentinel_log; // no sentinel names the master
  log_throttle role_log;     // the command link's peer is no master, or did not say
  log_throttle alive_log;    // a refused liveness key
  log_throttle connect_log;  // the command link cannot connect
  log_throttle auth_log;     // a link's AUTH refused
  log_throttle loading_log;  // Redis is loading its data (scripts refused)
  log_throttle refused_log;  // a user's publish refused by the script
  int64_t sentinel_asked_ms = 0; // the master's address asked, not yet answered

  bool by_sentinel() const { return !at.master_name.empty(); }
  bool ready() const {
    return cmd_up && sub_up && !run.empty() && scripts_loaded == sha.size()
           && confirmed.count(probe_channel) && replica_gen != cmd_gen;
  }
  std::string name() const {
    auto where = at.host.empty() ? std::string{"?"} : at.host + ":" + std::to_string(at.port);
    return by_sentinel() ? "master " + at.master_name + " (" + where + ")" : where;
  }
};

/// A user whose channel this node is subscribed to.
struct following {
  std::vector<server::stream_follower_actor> followers;
  std::vector<caf::typed_response_promise<server::stream_head>> waiting;
};

struct alive_node {
  int64_t ttl_ms = 0;
  int64_t sent_ms = 0;
};

struct broker_state {
  redis_broker_config cfg;
  std::shared_ptr<redis_broker::shared> shared;
  std::vector<shard_link> shards;
  std::unordered_map<std::string, following> users; // hashed, as the hub's
  std::set<std::string> leaving; // unsubscribed at the next tick
  std::map<uint64_t, std::function<void(redis_value)>> pending;
  uint64_t next_id = 0;
  std::map<std::string, alive_node> alive; // node instances of this process
  std::mt19937_64 rng;
  bool revocations_reading = false; // their read is under way
  // Read again (the subscriber came back: announcements may have been
  // missed) but not yet: tried each tick. Readiness waits only for the
  // first read; later ones only add.
  bool revocations_stale = false;
  uint64_t revocations_gen = 0;     // of the latest read (older answers ignored)
  std::string probe_channel;
  int64_t last_tick_ms = 0;         // the probes' tick before this one
  std::array<std::string, 3> texts; // of the scripts (publish's has this node's limits)
  bool flush_queued = false;        // a flush of the batches is in the mailbox
  // Other instances listed with this node's id: when each was last seen
  // listed until (a live one moves it on), and how often it was said.
  std::map<std::string, int64_t> twins;
  log_throttle twin_log;
  uint64_t descriptions = 0;
  std::shared_ptr<spdlog::logger> log = log::get("broker.redis");
  static inline const char* name = "kullsync.redis_broker";
};

using broker_ptr = broker_impl::stateful_pointer<broker_state>;

// redis_link.cpp
void command(broker_ptr self, shard_link& s, std::vector<std::string> argv,
             std::function<void(redis_value)> done);
/// The same with a command kept for a second try (no copy for the first).
void command(broker_ptr self, shard_link& s,
             std::shared_ptr<const std::vector<std::string>> argv,
             std::function<void(redis_value)> done);
/// The same on a given link (a sentinel's); unsent when it is null.
void command_on(broker_ptr self, const std::shared_ptr<redis_connection>& link,
                std::shared_ptr<const std::vector<std::string>> argv,
                std::function<void(redis_value)> done);
/// Drops a link at once (its commands fail); its `down` follows.
void drop(broker_ptr self, const std::shared_ptr<redis_connection>& c, std::string why);
void subscribe(broker_ptr self, shard_link& s, std::vector<std::string> channels, bool on);
void on_reply(broker_ptr self, uint64_t id, redis_value v);
void on_link(broker_ptr self, uint32_t index, bool subscriber, uint64_t gen, bool up,
             const std::string& why);
/// Every probe interval: links made again, probes, batched unsubscribes,
/// node liveness.
void tick(broker_ptr self);
// redis_probe.cpp: whether an instance still answers
/// A ready instance's probe: sent, or judged late (its links cut).
void probe(broker_ptr self, shard_link& s, int64_t now);
/// The probe came back on the subscriber link of `s`.
void probe_back(broker_ptr self, shard_link& s);
void send_alive(broker_ptr self, shard_link& s);
void refresh_ready(broker_ptr self);

// redis_sentinel.cpp: where the master Sentinel names is
/// Each tick: a link to a sentinel when there is none (the next in turn),
/// which asks for the master and listens for +switch-master.
void watch_master(broker_ptr self, shard_link& s);
void on_sentinel_link(broker_ptr self, uint32_t index, uint64_t gen, bool up,
                      const std::string& why);
void on_switch_master(broker_ptr self, uint32_t index, uint64_t gen,
                      const std::string& payload);
/// The master is in doubt (its link dropped, it refused a write as a
/// replica): the sentinels are asked before the links are made again.
void ask_again(broker_ptr self, shard_link& s, const std::string& why);
/// ROLE on a new command link: `next` if its peer is a master, else the
/// link is dropped (with Sentinel, the sentinels asked again; a plain URL's
/// server is tried again each tick): no write goes to a replica.
void check_master(broker_ptr self, shard_link& s, std::function<void()> next);

// redis_nodes.cpp: what the nodes share besides streams (first instance)
std::string revoked_key(const broker_state& st); // the channel ("+:z": the set)
/// Loads the revocations in force into this node's list (its subscriber
/// confirmed the revocations' channel: none is missed from then on). A
/// read that fails (Redis still LOADING its data) is tried again at the
/// next tick (`revocations_due`).
/// The command link's peer is a replica now (`how`: what said so): it is
/// left once what was sent on it is answered.
void leave_replica(broker_ptr self, shard_link& s, const char* how);
void load_revocations(broker_ptr self);
bool revocations_due(broker_ptr self);
/// A message on the revocations' channel: true if `channel` is it.
bool on_revoked(broker_ptr self, const std::string& channel, const std::string& payload);
caf::result<bool> revoke(broker_ptr self, const server::revocation& r);
/// Lists this node (with what it says of itself) until three ticks on.
void describe_node(broker_ptr self);
caf::result<std::vector<std::string>> nodes(broker_ptr self);

// redis_broker.cpp
/// An instance is ready (or readier): waiting follows are served, and after
/// a resubscription the hubs are told to read what they missed.
void became_ready(broker_ptr self, shard_link& s);
broker_impl::behavior_type redis_broker_actor(broker_ptr self, redis_broker_config cfg,
                                              std::shared_ptr<redis_broker::shared> sh);

} // namespace kullsync::broker

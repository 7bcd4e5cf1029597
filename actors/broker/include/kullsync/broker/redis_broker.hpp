#pragma once

/// The cluster's broker on Redis (one or several instances; users are
/// sharded over them by a jump consistent hash, the same on every node).
/// Each instance holds, per user, the stream (numbered and stored in one
/// Lua script), the state a SNAPSHOT is made of, dedup answers and the
/// presence of devices per node, and fans messages out over one pub/sub
/// channel per user. hiredis runs on an Asio io_context (the server's io
/// thread): no thread of its own and no blocking call.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "kullsync/server/broker.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace kullsync::metrics {
class writer;
} // namespace kullsync::metrics

namespace kullsync::broker {

struct redis_endpoint {
  std::string host; // an IP address (names are resolved when parsed)
  uint16_t port = 6379;
  std::string user, password; // AUTH when a password is set (never logged)
  /// Set: the instance is the master these sentinels name (host and port
  /// are found at run time, and follow its failovers).
  std::string master_name;
  std::vector<std::pair<std::string, uint16_t>> sentinels; // resolved, as `host`
};

/// "redis://[[user]:password@]host[:port]" (port 6379 by default), or
/// "redis+sentinel://[[user]:password@]HOST:PORT[,HOST:PORT...]/MASTER_NAME"
/// (the credentials are the master's; the sentinels take none). Host names
/// are resolved now, once. Nothing on a malformed URL or an unknown host,
/// with `error` saying why (without the password).
std::optional<redis_endpoint> parse_redis_url(const std::string& url, std::string& error);

/// A list of URLs: split at the commas that begin another redis:// or
/// redis+sentinel:// URL (a sentinel URL's own commas separate sentinels).
std::vector<std::string> split_broker_list(const std::string& list);

struct redis_broker_config {
  std::vector<redis_endpoint> shards;
  std::string prefix = "ks:"; // of every key and channel
  size_t history_size = 1000;            // entries per stream (MAXLEN)
  int64_t history_ttl_ms = 600'000;      // a stream nobody writes to goes
  int64_t state_ttl_ms = 86'400'000;     // a user's state, presence, epoch
  int64_t dedup_ttl_ms = 600'000;        // client ids and Idempotency-Keys
  size_t max_shoots = 1000;              // shoots kept per user (0: no cap)
  int64_t field_idle_ms = 3'600'000;     // a field nobody updated goes
  std::chrono::milliseconds connect_timeout{2000};
  /// How often each subscriber connection is proven alive (a message
  /// published to itself); 3 missed: it is dropped and made again.
  std::chrono::milliseconds probe_interval{1000};
  /// This node's instance (server_config::cluster.instance), and what it
  /// says of itself in the cluster's list of nodes (a JSON object), asked
  /// at every probe interval (any thread: atomics only). Null: not listed.
  std::string instance;
  std::function<std::string()> describe;
  /// This node's list of revoked tokens, kept the same as every other
  /// node's: revocations are stored in the first instance and announced on
  /// its channel.
  std::shared_ptr<server::revocation_list> revocations;
};

/// Registers the broker's message types (before the actor system exists).
void add_broker_types(caf::actor_system_config& cfg);

class redis_broker {
public:
  redis_broker(caf::actor_system& sys, redis_broker_config cfg);
  ~redis_broker();
  redis_broker(const redis_broker&) = delete;
  redis_broker& operator=(const redis_broker&) = delete;

  /// The actor the hub shards talk to (server_config::cluster.broker).
  server::broker_actor actor() const;

  /// Connects every instance on `io`, whose thread runs the connections
  /// from then on. Until an instance is connected, subscribed and has its
  /// scripts, requests for its users fail as unavailable. `unit` is that
  /// thread's io bridge (beast_server::io_unit): what Redis answers wakes the
  /// broker there, not on CAF's threads.
  void start(boost::asio::io_context& io, caf::execution_unit* unit = nullptr);

  /// Closes the connections (waits up to a second for the io thread), then
  /// stops the actor. Call before the io thread stops.
  void stop();

  /// Whether the node can serve (GET /readyz): an instance connected, and
  /// the revocations in force read. Not every instance: one instance lost
  /// is lost to every node alike, and a balancer that saw every node not
  /// ready would refuse the other instances' users too; the lost one's
  /// users are refused alone (503, NACK `unavailable`, 1013).
  bool ready() const;

  /// The broker's part of a /metrics scrape (atomics only: any thread).
  void write_metrics(metrics::writer& w) const;

  /// The instance that holds `user`'s stream, as configured: "HOST:PORT",
  /// or "master NAME" (Sentinel). Any thread.
  std::string instance_of(const std::string& user) const;

  struct shared;

private:
  std::shared_ptr<shared> shared_;
  std::vector<std::string> instance_names_;
  server::broker_actor actor_;
};

} // namespace kullsync::broker

#pragma once

// Private to the server: what a hub shard reads and writes its users'
// streams through, whichever broker is behind it:
// - a node alone: its own stream core in process (local_broker), which
//   answers and delivers before the call returns;
// - a cluster: the broker actor (Redis, or the simulation's), whose answers
//   and deliveries come later as messages.
// The hub is written once against this interface: it has no mode of its own.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include "../stream/stream_core.hpp"
#include "kullsync/server/broker.hpp"

namespace kullsync::server {

class hub_broker {
public:
  template <class T>
  using reply = std::function<void(caf::expected<T>)>;

  virtual ~hub_broker() = default;

  virtual void publish(publish_request req, reply<publish_receipt> done) = 0;
  /// A publish's answer came (a broker actor answers `published(ticket,
  /// ...)` to the hub, which hands it here).
  virtual void answer(uint64_t ticket, caf::expected<publish_receipt> r) = 0;
  /// An actor the hub monitors went down: true if it was the broker (what
  /// waited for it then fails).
  virtual bool broker_down(const caf::actor_addr& who) = 0;
  /// Follows the user's stream: its messages go to the hub's deliver; the
  /// head comes once every later message will.
  virtual void follow(const std::string& user, reply<stream_head> done) = 0;
  virtual void unfollow(const std::string& user) = 0;
  virtual void read(const std::string& user, const std::string& epoch, uint64_t since,
                    uint64_t upto, reply<stream_range> done) = 0;
  virtual void head(const std::string& user, reply<stream_head> done) = 0;
  /// Keeps a revocation and gives it to every node's list.
  virtual void revoke(const revocation& r, reply<bool> done) = 0;

  /// Every sweep: this node says it is alive (for `ttl`), and what expired
  /// is forgotten.
  virtual void tick(int64_t now_ms, std::chrono::milliseconds ttl) = 0;

  /// Whether deliveries can be lost (a remote broker's pub/sub): then the
  /// hub checks each followed stream's position now and then.
  virtual bool may_lose() const = 0;

  /// What the broker holds here (a node alone's history and state).
  virtual stream_stats stats() const = 0;
};

} // namespace kullsync::server

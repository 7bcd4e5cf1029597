#pragma once

// The real server actors (hub shards, sessions, HTTP API) in a simulation,
// listening on one URL of a memory network, restartable with a new epoch.
// What sync_server does by blocking a thread (close_all, stats), which would
// stop a simulation's clock, it does without blocking: stats runs the
// simulation until the hubs answer, close_all only sends (run or advance).

#include <functional>
#include <string>

#include "kullsync/messages/types.hpp"
#include "kullsync/server/hub_stats.hpp"
#include "kullsync/server/server.hpp"
#include "kullsync/testing/sim_network.hpp"
#include "kullsync/testing/sim_system.hpp"

namespace kullsync::sim {

class sim_server {
public:
  /// Listens at once; `cfg` is completed with the simulation's clock
  /// (`wall_start_ms`), legacy tokens and a fixed epoch unless it names its
  /// own, so that a run replays.
  sim_server(sim_system& sim, sim_network_actor net, std::string url,
             server::server_config cfg = {});
  ~sim_server();

  /// Stops and starts again as a new process: links cut (or, when
  /// `going_away`, each socket first closed with 1001 as a stopping server
  /// drains), state and in-memory history gone, the streams' epoch now
  /// `epoch`.
  void restart(std::string epoch, bool going_away = false);

  /// POSTs `body` to `target`; `done` gets the answer's status.
  void post(const std::string& target, std::string body,
            std::function<void(int)> done = {});
  void post_credits(const std::string& user, int64_t balance,
                    std::function<void(int)> done = {});
  void post_shoot(const std::string& user, const msg::shoot_progress& p,
                  std::function<void(int)> done = {});

  /// What the hub remembers of `user` (the SNAPSHOT it would send).
  msg::user_state remembered(const std::string& user);

  /// Every socket closed with `code` as a stopping server drains (not
  /// waited for: run or advance the simulation).
  void close_all(uint16_t code, const std::string& reason);

  /// Every hub's counters, summed.
  server::hub_stats stats();

  /// v2 deliveries this server's hubs withheld as out of order, in every
  /// run of it (a hub's own check; never expected).
  uint64_t order_faults();

  /// ACKs its hubs hold for positions not yet applied here (none once
  /// every device's messages are acknowledged: more is a leak).
  uint64_t acks_waiting();

  const server::sync_server& handles() const { return server_; }

private:
  void start();
  uint64_t hub_order_faults();

  sim_system& sim_;
  sim_network_actor net_;
  std::string url_;
  server::server_config cfg_;
  server::sync_server server_;
  uint64_t order_faults_before_ = 0; // of runs before a restart
};

} // namespace kullsync::sim

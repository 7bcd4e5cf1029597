#pragma once

// One client engine, a memory network and a scripted peer in one
// deterministic actor system, with recorders on the engine's topics.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kullsync/client/engine.hpp"
#include "scripted_peer.hpp"
#include "sim_fixture.hpp"

namespace kullsync::test {

struct status_record {
  caf::timespan at;
  connection_status status;
};

struct state_record {
  caf::timespan at;
  sync_state state;
};

struct message_record {
  caf::timespan at;
  msg::server_message message;
};

struct net_record {
  caf::timespan at;
  std::string line;
};

/// Everything observed, appended in order (single-threaded scheduler).
struct observations {
  std::vector<status_record> statuses;
  std::vector<state_record> states;
  std::vector<net_record> network;
  std::vector<message_record> messages;
  std::vector<size_t> message_batches; // size of each batch, in order
};

using recorder_actor = caf::typed_actor<
  caf::reacts_to<state_atom, sync_state>,
  caf::reacts_to<status_atom, connection_status>,
  caf::reacts_to<trace_atom, std::string>,
  caf::reacts_to<inbound_atom, inbound_batch>>;

/// Appends what it receives to `out`, stamped with the virtual time.
recorder_actor spawn_recorder(caf::actor_system& sys,
                              std::shared_ptr<observations> out);

constexpr const char* sim_url = "ws://sim.kull:5000/ws";
constexpr const char* sim_alt_url = "wss://staging.sim.kull/ws";
constexpr int64_t sim_wall_start_ms = sim::wall_start_ms;

client_config default_sim_config();

class harness {
public:
  /// With `http`, the engine loads the server's state through the HTTP
  /// client it spawns in the harness's system.
  using http_factory = std::function<http_client_actor(caf::actor_system&)>;
  explicit harness(client_config cfg = default_sim_config(), uint64_t seed = 1,
                   http_factory http = {});
  ~harness();

  sim_system sim;
  std::shared_ptr<observations> seen = std::make_shared<observations>();
  recorder_actor recorder;
  sim_network_actor net;
  peer_actor peer;
  client_config cfg;
  client_engine engine;

  sync_state state();
  connection_status status() { return state().connection; }
  peer_truth truth(const std::string& user);
  network_stats net_stats();
  /// Restarts the peer: its links are cut, a new process listens, and the
  /// backend's knowledge (shoots, credits) carries over.
  void restart_peer();
  void publish(const msg::server_message& m);
};

/// Shorthands for server messages of the peer to user "u1".
msg::server_message progress_msg(const std::string& shoot, msg::shoot_status s,
                                 int64_t done, int64_t total);
msg::server_message credit_msg(int64_t balance, int64_t change);

} // namespace kullsync::test

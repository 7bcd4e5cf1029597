#include "harness.hpp"

#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace kullsync::test {

recorder_actor spawn_recorder(caf::actor_system& sys,
                              std::shared_ptr<observations> out) {
  return sys.spawn([out](recorder_actor::pointer self)
                     -> recorder_actor::behavior_type {
    auto t = [self] { return self->clock().now().time_since_epoch(); };
    return {
      [=](state_atom, sync_state& s) {
        out->states.push_back({t(), std::move(s)});
      },
      [=](status_atom, connection_status& s) {
        out->statuses.push_back({t(), std::move(s)});
      },
      [=](trace_atom, std::string& line) {
        out->network.push_back({t(), std::move(line)});
      },
      [=](inbound_atom, inbound_batch& ms) {
        out->message_batches.push_back(ms.size());
        for (auto& m : ms)
          out->messages.push_back({t(), std::move(m)});
      },
    };
  });
}

client_config default_sim_config() {
  client_config cfg;
  cfg.connection.url = sim_url;
  cfg.connection.user_id = "u1";
  cfg.connection.device_id = "dev-1";
  sim::pin(cfg, 1); // a run replays
  return cfg;
}

harness::harness(client_config c, uint64_t seed, http_factory http)
  : cfg(std::move(c)) {
  recorder = spawn_recorder(sim.sys(), seen);
  net = sim::spawn_sim_network(sim.sys(), seed,
                             caf::actor_cast<network_tracer_actor>(recorder));
  peer = spawn_scripted_peer(sim.sys(), net, {sim_url, sim_alt_url},
                             sim_wall_start_ms);
  engine = spawn_client(sim.sys(), cfg, spawn_memory_transport(sim.sys(), net),
                        http ? http(sim.sys()) : http_client_actor{});
  engine.subscribe(caf::actor_cast<state_subscriber_actor>(recorder));
  engine.subscribe(caf::actor_cast<status_subscriber_actor>(recorder));
  engine.subscribe(msg::server_type::unknown,
                   caf::actor_cast<message_subscriber_actor>(recorder));
  sim.run();
}

harness::~harness() {
  // The engine closes its link and ends once the network told it the link
  // closed (at once, or after what is in flight), at most stop_timeout.
  engine.stop();
  sim.run();
  sim.advance(cfg.connection.stop_timeout);
  caf::anon_send_exit(peer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(recorder, caf::exit_reason::user_shutdown);
  sim.run();
}


sync_state harness::state() {
  return sim.ask<sync_state>(engine.coordinator, get_atom::value);
}

peer_truth harness::truth(const std::string& user) {
  return sim.ask<peer_truth>(peer, get_atom::value, user);
}

network_stats harness::net_stats() {
  return sim.ask<network_stats>(net, stats_atom::value);
}

void harness::restart_peer() {
  peer_world world{{"u1", truth("u1")}};
  caf::anon_send(net, cut_atom::value, cut_mode::clean);
  caf::anon_send(net, unlisten_atom::value, std::string{sim_url});
  caf::anon_send(net, unlisten_atom::value, std::string{sim_alt_url});
  caf::anon_send_exit(peer, caf::exit_reason::user_shutdown);
  sim.run();
  peer = spawn_scripted_peer(sim.sys(), net, {sim_url, sim_alt_url},
                             sim_wall_start_ms, std::move(world));
  sim.run();
}

void harness::publish(const msg::server_message& m) {
  caf::anon_send(peer, publish_atom::value, std::string{"u1"}, m);
  sim.run();
}

msg::server_message progress_msg(const std::string& shoot, msg::shoot_status s,
                                 int64_t done, int64_t total) {
  msg::shoot_progress p;
  p.shoot_id = shoot;
  p.status = s;
  p.processed_count = done;
  p.total_count = total;
  p.provider = "sim";
  return msg::make_server_message(msg::server_type::shoot_progress, p,
                                  sim_wall_start_ms, "server", "u1");
}

msg::server_message credit_msg(int64_t balance, int64_t change) {
  return msg::make_server_message(msg::server_type::credit_update,
                                  msg::credit_update{"u1", balance, change,
                                                     "sim"},
                                  sim_wall_start_ms, "server", "u1");
}

} // namespace kullsync::test

#include "kullsync/testing/sim_server.hpp"

#include <cstdio>

#include <caf/send.hpp>

#include "kullsync/messages/codec.hpp"
#include "server_actors.hpp"

namespace kullsync::sim {

sim_server::sim_server(sim_system& sim, sim_network_actor net, std::string url,
                       server::server_config cfg)
  : sim_(sim), net_(std::move(net)), url_(std::move(url)), cfg_(std::move(cfg)) {
  if (!cfg_.wall_start_ms)
    cfg_.wall_start_ms = wall_start_ms;
  if (!cfg_.auth)
    cfg_.auth = std::make_shared<server::legacy_authenticator>(7);
  if (cfg_.node_epoch.empty()) { // one of its URL's: two servers have two
    uint64_t h = 14695981039346656037ull; // FNV-1a
    for (unsigned char c : url_)
      h = (h ^ c) * 1099511628211ull;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    cfg_.node_epoch = hex;
  }
  start();
}

sim_server::~sim_server() {
  server_.stop();
  sim_.run();
}

void sim_server::start() {
  server_ = server::spawn_sync_server(sim_.sys(), cfg_);
  caf::anon_send(net_, listen_atom::value, url_, server_.acceptor);
  sim_.run();
}

uint64_t sim_server::hub_order_faults() {
  uint64_t n = 0;
  for (auto& h : server_.env->hubs)
    n += sim_.ask<server::hub_stats>(h, stats_atom::value).order_faults;
  return n;
}

uint64_t sim_server::acks_waiting() {
  uint64_t n = 0;
  for (auto& h : server_.env->hubs)
    n += sim_.ask<server::hub_stats>(h, stats_atom::value).acks_waiting;
  return n;
}

uint64_t sim_server::order_faults() {
  return order_faults_before_ + hub_order_faults();
}

void sim_server::restart(std::string epoch, bool going_away) {
  order_faults_before_ += hub_order_faults();
  if (going_away) {
    // As a stopping node does: every socket closed with 1001, and up to
    // 3 s (virtual) for the close frames to reach the devices through the
    // network's latency before the links are cut.
    close_all(1001, "server going away");
    auto deadline = sim_.elapsed() + std::chrono::seconds{3};
    sim_.run();
    auto closing = [&] {
      auto n = sim_.ask<network_stats>(net_, stats_atom::value);
      return server::sockets_of(stats()) > 0 || n.closing_links > 0;
    };
    while (closing() && sim_.elapsed() < deadline)
      sim_.advance(std::chrono::milliseconds{10});
  }
  sim_.run();
  caf::anon_send(net_, unlisten_atom::value, url_, server_.acceptor);
  caf::anon_send(net_, cut_atom::value, cut_mode::clean);
  sim_.run();
  server_.stop();
  sim_.run();
  cfg_.node_epoch = std::move(epoch);
  // A new process reads the same wall clock: it goes on from now.
  cfg_.wall_start_ms = wall_start_ms
                       + std::chrono::duration_cast<std::chrono::milliseconds>(
                           sim_.elapsed())
                           .count();
  start();
}

void sim_server::post(const std::string& target, std::string body,
                      std::function<void(int)> done) {
  http_exchange ex;
  ex.request.method = "POST";
  ex.request.target = target;
  ex.request.body = std::move(body);
  ex.responder = std::make_shared<std::function<void(http_response)>>(
    [done = std::move(done)](http_response r) {
      if (done)
        done(r.status);
    });
  caf::anon_send(server_.http_api, http_atom::value, std::move(ex));
}

void sim_server::post_credits(const std::string& user, int64_t balance,
                              std::function<void(int)> done) {
  post("/api/sync/credit-update",
       "{\"userId\":\"" + user + "\",\"newBalance\":" + std::to_string(balance)
         + ",\"change\":1}",
       std::move(done));
}

void sim_server::post_shoot(const std::string& user, const msg::shoot_progress& p,
                            std::function<void(int)> done) {
  auto body = msg::to_json(p);
  body.insert(1, "\"userId\":\"" + user + "\",");
  post("/api/sync/shoot-progress", std::move(body), std::move(done));
}

msg::user_state sim_server::remembered(const std::string& user) {
  return sim_.ask<msg::user_state>(server::hub_for(server_.env->hubs, user),
                                   server::snapshot_atom::value, user);
}

void sim_server::close_all(uint16_t code, const std::string& reason) {
  // As sync_server::close_all, without blocking the simulation.
  for (auto& h : server_.env->hubs)
    caf::anon_send(h, server::shutdown_atom::value, code, reason);
}

server::hub_stats sim_server::stats() {
  server::hub_stats total;
  for (auto& h : server_.env->hubs)
    total += sim_.ask<server::hub_stats>(h, stats_atom::value);
  return total;
}

} // namespace kullsync::sim

#include "kullsync/server/server.hpp"

#include <caf/scoped_actor.hpp>

#include <cstdio>
#include <random>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "kullsync/common/caf_types.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/version.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

bool sync_server::close_all(caf::actor_system& sys, uint16_t code, const std::string& reason,
                            std::chrono::milliseconds timeout) const {
  if (!env)
    return true; // never spawned: nothing to close
  caf::scoped_actor self{sys};
  auto& hubs = env->hubs;
  for (auto& h : hubs)
    self->send(h, shutdown_atom::value, code, reason);
  // Sent to all first: the hubs drain side by side, within one deadline.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t drained = 0;
  for (size_t i = 0; i < hubs.size(); ++i) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    bool timed_out = false;
    self->receive([&](bool) { ++drained; },
                  caf::after(std::max(left, std::chrono::milliseconds{0})) >>
                    [&] { timed_out = true; });
    if (timed_out)
      break;
  }
  return drained == hubs.size();
}

void sync_server::stop() const {
  if (!env)
    return;
  caf::anon_send_exit(acceptor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(env->token_watch, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(env->drain, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(http_api, caf::exit_reason::user_shutdown);
  for (auto& h : env->hubs)
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
}

hub_stats sync_server::stats(caf::actor_system& sys) const {
  hub_stats total;
  if (!env)
    return total;
  caf::scoped_actor self{sys};
  for (auto& h : env->hubs)
    self->request(h, std::chrono::seconds{5}, stats_atom::value)
      .receive(
        [&](const hub_stats& x) { total += x; },
        [](const caf::error&) {}); // a hub that does not answer counts nothing
  return total;
}

std::string to_string(broker_errc x) {
  switch (x) {
    case broker_errc::unavailable: return "unavailable";
    case broker_errc::bad_reply: return "bad_reply";
    case broker_errc::outcome_unknown: return "outcome_unknown";
  }
  return "unknown";
}

caf::error make_error(broker_errc x, std::string detail) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("broker"),
                    caf::make_message(std::move(detail))};
}

bool outcome_unknown(const caf::error& e) {
  if (e.category() == caf::atom("broker"))
    return e.code() == static_cast<uint8_t>(broker_errc::outcome_unknown);
  return e.category() == caf::atom("system")
         && e.code() == static_cast<uint8_t>(caf::sec::request_timeout);
}

void add_server_types(caf::actor_system_config& cfg) {
  add_common_types(cfg);
  cfg.add_error_category(caf::atom("broker"),
                         [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                           auto out = "broker: " + to_string(static_cast<broker_errc>(code));
                           if (ctx.match_elements<std::string>())
                             out += " (" + ctx.get_as<std::string>(0) + ")";
                           return out;
                         });
  cfg.add_message_type<hub_stats>("kullsync::hub_stats")
    .add_message_type<join_request>("kullsync::join_request")
    .add_message_type<drain_status>("kullsync::drain_status")
    .add_message_type<session_actor>("kullsync::session_actor")
    .add_message_type<hub_actor>("kullsync::hub_actor")
    .add_message_type<message_ptr>("kullsync::stream_message")
    .add_message_type<std::vector<message_ptr>>("kullsync::stream_messages")
    .add_message_type<publish_request>("kullsync::publish_request")
    .add_message_type<publish_receipt>("kullsync::publish_receipt")
    .add_message_type<stream_head>("kullsync::stream_head")
    .add_message_type<state_frame>("kullsync::state_frame")
    .add_message_type<stream_range>("kullsync::stream_range")
    .add_message_type<broker_actor>("kullsync::broker_actor")
    .add_message_type<revocation>("kullsync::revocation")
    .add_message_type<stream_follower_actor>("kullsync::stream_follower");
}

std::string new_node_epoch() {
  // A restarted server's streams must never pass for the old ones.
  std::random_device rd;
  uint64_t x = (uint64_t{rd()} << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

bool token_revoked(const server_config& cfg, const identity& who, int64_t now_ms) {
  if (!cfg.auth || !cfg.auth->signed_tokens() || !cfg.revocations)
    return false;
  return cfg.revocations->revoked(
    who.subject(), who.legacy ? std::nullopt : who.issued_at_ms, now_ms);
}

std::string node_instance(const std::string& node_id, const std::string& node_epoch) {
  return (node_id.empty() ? std::string{"node"} : node_id) + "." + node_epoch;
}

std::string node_description(const std::string& node_id, int64_t started_at_ms,
                             const server_counters& counters, bool ready) {
  return "{\"nodeId\":" + msg::json_string(node_id.empty() ? "node" : node_id)
         + ",\"version\":" + msg::json_string(kullsync::version)
         + ",\"sockets\":" + std::to_string(counters.sockets_now.load())
         + ",\"users\":" + std::to_string(counters.users_now.load())
         + ",\"startedAt\":" + std::to_string(started_at_ms)
         + ",\"ready\":" + (ready ? "true" : "false") + "}";
}

bool node_ready(const server_config& cfg) {
  return !(cfg.draining && cfg.draining->load()) && (!cfg.ready || cfg.ready());
}

sync_server spawn_sync_server(caf::actor_system& sys, server_config cfg) {
  if (!cfg.auth)
    cfg.auth = std::make_shared<legacy_authenticator>();
  if (!cfg.revocations)
    cfg.revocations = std::make_shared<revocation_list>();
  if (cfg.shards == 0)
    cfg.shards = std::max(1u, std::thread::hardware_concurrency());
  if (!cfg.draining)
    cfg.draining = std::make_shared<std::atomic<bool>>(false);
  auto env = std::make_shared<session_env>();
  env->clock = make_wall_clock(sys, cfg.wall_start_ms);
  if (cfg.started_at_ms == 0)
    cfg.started_at_ms = epoch_ms(sys, env->clock);
  env->cfg = cfg;
  env->counters = cfg.counters ? cfg.counters : std::make_shared<server_counters>();
  sync_server s;
  s.counters = env->counters;
  if (cfg.node_epoch.empty())
    cfg.node_epoch = new_node_epoch();
  // Names this node's presence in the streams (a restarted node is another).
  cfg.cluster.instance = node_instance(cfg.cluster.node_id, cfg.node_epoch);
  env->cfg.cluster.instance = cfg.cluster.instance;
  auto shard_cfg = cfg;
  shard_cfg.history.memory_bytes = cfg.history.memory_bytes / cfg.shards;
  for (size_t i = 0; i < cfg.shards; ++i)
    env->hubs.push_back(spawn_hub(sys, shard_cfg, env->clock,
                                  cfg.node_epoch + "." + std::to_string(i), env->counters));
  // A revocation that reaches this node (an operator's, another node's, or
  // one loaded) has the user's sockets check their tokens. Weak: the list
  // may outlive the hubs.
  std::vector<caf::weak_actor_ptr> weak_hubs;
  for (auto& h : env->hubs)
    weak_hubs.push_back(caf::actor_cast<caf::weak_actor_ptr>(h));
  // The admin feed's sockets check too: an admin token is of its `sub`,
  // but its socket is on the admin feed's stream.
  cfg.revocations->observe([weak_hubs, admin = cfg.admin_user](const std::string& user) {
    auto tell = [&](const std::string& u) {
      auto& w = weak_hubs[hub_index(u, weak_hubs.size())];
      if (auto h = caf::actor_cast<caf::strong_actor_ptr>(w))
        caf::anon_send(caf::actor_cast<hub_actor>(std::move(h)), revoked_atom::value, u);
    };
    tell(user);
    if (user != admin)
      tell(admin);
  });
  // The watch reads only the config, the clock and the counters of `env`.
  env->token_watch = spawn_token_watch(sys, env);
  env->drain = spawn_node_drain(sys, env);
  s.acceptor = spawn_acceptor(sys, env);
  s.http_api = spawn_http_api(sys, env);
  s.env = env;
  return s;
}

} // namespace kullsync::server

// The acceptor: a session for every accepted link, and the limits of the
// peer's address (concurrent sockets, upgrades per second). A link over a
// limit still gets its session, which opens it and closes it with the code,
// so that every client can read why.
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "limits.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

namespace {

struct acceptor_state {
  std::shared_ptr<const session_env> env;
  std::unordered_map<std::string, size_t> open_by_peer;
  std::unordered_map<caf::actor_addr, std::string> peer_of; // session -> address
  std::unique_ptr<bucket_table> upgrades;
  std::unordered_map<std::string, log_throttle> logged;
  std::shared_ptr<spdlog::logger> log = log::get("server.acceptor");
  static inline const char* name = "kullsync.acceptor";
};

using acceptor_ptr = acceptor_actor::stateful_pointer<acceptor_state>;

/// Whether `peer` may open one more socket now (and the node any); the
/// close code if not.
std::optional<refusal> judge(acceptor_ptr self, const std::string& peer) {
  auto& st = self->state;
  // A node an operator drains takes no new device (not logged per socket:
  // the drain said so once). One that joins before this sees the flag is
  // closed by its hub.
  if (st.env->cfg.draining->load(std::memory_order_relaxed))
    return refusal{close_code::going_away, "server draining"};
  auto& lim = st.env->cfg.limits;
  auto now = epoch_ms(self->home_system(), st.env->clock);
  std::optional<refusal> r;
  if (lim.upgrades_per_ip > 0 && !st.upgrades->take(peer, now)) {
    server_counters::add(st.env->counters->ip_upgrade_rate);
    r = refusal{close_code::rate_limited, "Rate limited: too many connection attempts"};
  } else if (lim.sockets_per_ip > 0 && st.open_by_peer[peer] >= lim.sockets_per_ip) {
    server_counters::add(st.env->counters->ip_socket_cap);
    r = refusal{close_code::policy_violation, "Too many connections from this address"};
  }
  if (r && st.logged[peer].should_log(now))
    st.log->warn("{}: socket refused: {}", peer, r->second);
  if (st.logged.size() > 100000) // addresses that were refused once
    st.logged.clear();
  return r;
}

void on_session_down(acceptor_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto i = st.peer_of.find(who);
  if (i == st.peer_of.end())
    return;
  auto j = st.open_by_peer.find(i->second);
  if (j != st.open_by_peer.end() && --j->second == 0)
    st.open_by_peer.erase(j);
  st.peer_of.erase(i);
}

acceptor_actor::behavior_type acceptor(acceptor_ptr self,
                                       std::shared_ptr<const session_env> env) {
  auto& st = self->state;
  st.env = std::move(env);
  st.upgrades = std::make_unique<bucket_table>(st.env->cfg.limits.upgrades_per_ip,
                                               st.env->cfg.limits.upgrade_burst);
  self->set_down_handler([=](const caf::down_msg& dm) { on_session_down(self, dm.source); });
  return {
    [=](accept_atom, accepted_link_actor t, std::string& target, header_list& headers,
        const std::string& peer) {
      auto refused = judge(self, peer);
      auto s = spawn_session(self->home_system(), self->state.env, std::move(t),
                             std::move(target), std::move(headers), std::move(refused), peer);
      // Counted only with a cap: without one, an idle socket costs the
      // acceptor nothing.
      if (refused || self->state.env->cfg.limits.sockets_per_ip == 0)
        return;
      self->monitor(s);
      self->state.peer_of.emplace(s.address(), peer);
      ++self->state.open_by_peer[peer];
    },
  };
}

} // namespace

acceptor_actor spawn_acceptor(caf::actor_system& sys,
                              std::shared_ptr<const session_env> env) {
  return sys.spawn(acceptor, std::move(env));
}

} // namespace kullsync::server

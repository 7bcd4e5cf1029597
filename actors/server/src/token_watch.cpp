// Closes sockets whose token expired unrefreshed (4003): one ordered set of
// expiries and one sweep timer for all sockets, armed only while some
// socket has an expiry.
#include <set>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

namespace {

struct token_watch_state {
  std::shared_ptr<const session_env> env;
  std::set<std::pair<int64_t, caf::actor_addr>> by_time;
  std::unordered_map<caf::actor_addr, std::pair<int64_t, session_actor>> by_session;
  bool armed = false;
  int64_t leeway_ms = 0; // the authenticator's: a token it takes is not closed
  std::shared_ptr<spdlog::logger> log = log::get("server.tokens");
  static inline const char* name = "kullsync.token_watch";
};

using watch_ptr = token_watch_impl::stateful_pointer<token_watch_state>;

void unwatch(watch_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto i = st.by_session.find(who);
  if (i == st.by_session.end())
    return;
  st.by_time.erase({i->second.first, who});
  st.by_session.erase(i);
}

void arm(watch_ptr self) {
  auto& st = self->state;
  if (st.armed || st.by_time.empty())
    return;
  st.armed = true;
  self->delayed_send(self, st.env->cfg.expiry_sweep, sweep_atom::value);
}

void sweep(watch_ptr self) {
  auto& st = self->state;
  st.armed = false;
  auto now = epoch_ms(self->home_system(), st.env->clock);
  while (!st.by_time.empty() && st.by_time.begin()->first <= now) {
    auto who = st.by_time.begin()->second;
    auto i = st.by_session.find(who);
    self->send(i->second.second, close_atom::value, close_code::token_expired,
               std::string{"Token expired"});
    server_counters::add(st.env->counters->expired_closes);
    unwatch(self, who);
  }
  arm(self);
}

token_watch_impl::behavior_type token_watch(watch_ptr self,
                                            std::shared_ptr<const session_env> env) {
  self->state.env = std::move(env);
  if (auto& auth = self->state.env->cfg.auth)
    self->state.leeway_ms = auth->expiry_leeway_ms();
  return {
    [=](watch_atom, const session_actor& who, int64_t token_expiry) {
      // Closed when the authenticator would refuse the token too: within
      // its leeway it accepted it, and closing it at once would contradict
      // that (4003 moments after the WELCOME or REFRESHED).
      auto expires_at = token_expiry + self->state.leeway_ms;
      unwatch(self, who.address());
      self->state.by_time.emplace(expires_at, who.address());
      self->state.by_session.emplace(who.address(), std::make_pair(expires_at, who));
      arm(self);
    },
    [=](unwatch_atom, const session_actor& who) { unwatch(self, who.address()); },
    [=](sweep_atom) { sweep(self); },
  };
}

} // namespace

token_watch_actor spawn_token_watch(caf::actor_system& sys,
                                    std::shared_ptr<const session_env> env) {
  return caf::actor_cast<token_watch_actor>(sys.spawn(token_watch, std::move(env)));
}

} // namespace kullsync::server

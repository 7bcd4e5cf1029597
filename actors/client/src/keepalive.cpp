#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "spawn.hpp"

namespace kullsync {

namespace {

struct keepalive_state {
  keepalive_config cfg;
  wall_clock clock;
  connection_impl conn;
  uint64_t link = 0;     // 0: no link up
  uint64_t ping_no = 0;  // the PING whose answer we wait for
  bool heard = true;     // a frame arrived since that PING
  static inline const char* name = "kullsync.keepalive";
};

using keepalive_ptr = keepalive_impl::stateful_pointer<keepalive_state>;

void schedule_tick(keepalive_ptr self, uint64_t link, uint64_t n) {
  self->delayed_send(self, self->state.cfg.interval, tick_atom::value, link, n);
}

keepalive_impl::behavior_type keepalive(keepalive_ptr self,
                                        keepalive_config cfg, wall_clock clock,
                                        connection_impl conn) {
  self->state.cfg = cfg;
  self->state.clock = clock;
  self->state.conn = std::move(conn);
  return {
    [=](up_atom, uint64_t link) {
      auto& st = self->state;
      st.link = link;
      st.ping_no = 0;
      st.heard = true;
      schedule_tick(self, link, 1);
    },
    [=](down_atom) { self->state.link = 0; },
    [=](heard_atom, uint64_t link) {
      if (link == self->state.link)
        self->state.heard = true;
    },
    [=](tick_atom, uint64_t link, uint64_t n) {
      auto& st = self->state;
      if (link != st.link)
        return;
      st.ping_no = n;
      st.heard = false;
      auto now_s = epoch_ms(self->home_system(), st.clock) / 1000.0;
      self->send(st.conn, send_atom::value, msg::make_ping(now_s));
      self->delayed_send(self, st.cfg.deadline, deadline_atom::value, link, n);
      schedule_tick(self, link, n + 1);
    },
    [=](deadline_atom, uint64_t link, uint64_t n) {
      auto& st = self->state;
      if (link != st.link || n != st.ping_no || st.heard)
        return;
      log::get("client.keepalive")
        ->warn("no answer to PING {} within {} ms: peer is dead", n,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                 st.cfg.deadline).count());
      st.link = 0;
      self->send(st.conn, dead_atom::value, link);
    },
  };
}

} // namespace

keepalive_actor spawn_keepalive(caf::actor_system& sys, keepalive_config cfg,
                                wall_clock clock, connection_impl conn) {
  return caf::actor_cast<keepalive_actor>(
    sys.spawn(keepalive, cfg, clock, std::move(conn)));
}

} // namespace kullsync

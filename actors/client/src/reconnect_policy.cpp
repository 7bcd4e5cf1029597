#include <algorithm>
#include <chrono>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/transports/close_code.hpp"
#include "spawn.hpp"

namespace kullsync {

namespace {

struct policy_state {
  reconnect_config cfg;
  uint32_t attempt = 0; // retries handed out since the last reset
  uint32_t waits = 0;   // of those, the ones a server asked for (not counted)
  std::mt19937_64 rng;
  static inline const char* name = "kullsync.reconnect_policy";
};

using policy_ptr = reconnect_policy_actor::stateful_pointer<policy_state>;

caf::timespan delay_for(policy_state& st, uint32_t attempt, double jitter) {
  auto& ds = st.cfg.delays;
  auto base = ds.empty() ? caf::timespan{std::chrono::seconds{1}}
                         : ds[std::min<size_t>(attempt - 1, ds.size() - 1)];
  jitter = std::clamp(jitter, 0.0, 1.0);
  if (jitter <= 0)
    return base;
  std::uniform_real_distribution<double> f{1.0 - jitter, 1.0 + jitter};
  return caf::timespan{static_cast<int64_t>(base.count() * f(st.rng))};
}

/// A retry that counts toward `max_attempts`; past them, giving up.
retry_decision counted(policy_state& st, double jitter) {
  retry_decision d;
  if (st.attempt >= st.cfg.max_attempts) {
    d.give_up = true;
    d.attempt = st.attempt;
    return d;
  }
  d.attempt = ++st.attempt;
  d.delay = delay_for(st, d.attempt, jitter);
  return d;
}

/// A retry the server asked for: it is up but cannot serve now (its broker
/// is out: 1013), asks the device to come back after a backoff (4008: it
/// dialled or sent too fast), or to resume (4009) again before the last
/// link proved stable. Backed off as the delays go, but a server that
/// answers is no reason to give up: these do not count toward max_attempts.
retry_decision asked_for(policy_state& st) {
  retry_decision d;
  d.attempt = ++st.waits;
  d.delay = delay_for(st, d.attempt, st.cfg.jitter);
  return d;
}

reconnect_policy_actor::behavior_type policy(policy_ptr self,
                                             reconnect_config cfg) {
  auto seed = cfg.jitter_seed != 0
                ? cfg.jitter_seed
                : static_cast<uint64_t>(
                  std::chrono::steady_clock::now().time_since_epoch().count())
                  // Engines started in the same tick still draw apart.
                  ^ (self->id() * 0x9e3779b97f4a7c15ull);
  self->state.rng.seed(seed);
  self->state.cfg = std::move(cfg);
  return {
    [=](lost_atom, uint16_t code) {
      auto& st = self->state;
      switch (code) {
        case close_code::going_away:
          // A server stopping sends it to all its sockets at once: that they
          // do not all come back in the same instant is the jitter's point.
          return counted(st, std::max(st.cfg.jitter, st.cfg.going_away_jitter));
        case close_code::try_again_later:
        case close_code::rate_limited:
        case close_code::stream_interrupted:
          return asked_for(st);
        default:
          return counted(st, st.cfg.jitter);
      }
    },
    [=](reset_atom) {
      self->state.attempt = 0;
      self->state.waits = 0;
    },
  };
}

} // namespace

reconnect_policy_actor spawn_reconnect_policy(caf::actor_system& sys,
                                              reconnect_config cfg) {
  return sys.spawn(policy, std::move(cfg));
}

} // namespace kullsync

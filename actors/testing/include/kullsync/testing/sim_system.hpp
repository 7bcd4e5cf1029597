#pragma once

// A deterministic actor system for tests and simulations: CAF's testing
// scheduler, driven by hand, with virtual time. Everything a simulation
// runs (engines, the memory network, sim_server) lives in one such system;
// a seed decides every choice, so a run replays exactly.

#include <cstdint>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "kullsync/client/caf_types.hpp"
#include "kullsync/client/config.hpp"
#include "kullsync/testing/sim_network.hpp"

namespace kullsync::sim {

/// The wall clock's epoch ms at a simulation's start (any fixed value: what
/// matters is that every run starts from the same one).
constexpr int64_t wall_start_ms = 1732580000000;

/// What a replayable engine needs besides the system's seed: its wall
/// clock (message ids, token times) at `wall_start_ms`, and its reconnect
/// jitter drawn from `seed` (never from the clock). An engine left with the
/// defaults differs from run to run.
inline void pin(client_config& cfg, uint64_t seed) {
  cfg.wall_start_ms = wall_start_ms;
  cfg.reconnect.jitter_seed = seed == 0 ? 1 : seed;
}

class sim_system {
public:
  sim_system() {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    cfg_.set("logger.file-verbosity", caf::atom("quiet"));
    cfg_.set("logger.console-verbosity", caf::atom("quiet"));
    add_client_types(cfg_);
    add_sim_types(cfg_);
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
  }

  caf::actor_system& sys() { return *sys_; }
  caf::scheduler::test_coordinator& sched() { return *sched_; }

  /// Runs every ready job (no time passes).
  size_t run() {
    size_t n = 0;
    while (sched_->try_run_once())
      ++n;
    return n;
  }

  caf::actor_clock::time_point now() { return sched_->clock().now(); }

  /// Virtual time since the system started.
  caf::timespan elapsed() { return now() - start_; }

  /// Lets `d` of virtual time pass, firing every timer on its due time.
  void advance(caf::timespan d) {
    auto end = now() + d;
    run();
    for (;;) {
      auto& sch = sched_->clock().schedule();
      if (sch.empty() || sch.begin()->first > end)
        break;
      auto due = sch.begin()->first;
      sched_->clock().advance_time(due > now() ? due - now() : caf::timespan{0});
      run();
    }
    if (now() < end)
      sched_->clock().advance_time(end - now());
    run();
  }

  /// Asks `h` and runs the system until the answer is there; throws when
  /// none comes without time passing (the asking actor ends either way).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& h, Ts... xs) {
    auto answer = std::make_shared<std::optional<T>>();
    auto asker = sys_->spawn([answer, h, xs...](caf::event_based_actor* self) {
      self->request(h, caf::infinite, xs...).then([answer](T& x) { *answer = std::move(x); });
    });
    run();
    if (!*answer) {
      caf::anon_send_exit(asker, caf::exit_reason::user_shutdown);
      run();
      throw std::runtime_error("no answer");
    }
    return std::move(**answer);
  }

  /// The time of the next timer, if any.
  bool next_timer(caf::actor_clock::time_point& t) {
    auto& sch = sched_->clock().schedule();
    if (sch.empty())
      return false;
    t = sch.begin()->first;
    return true;
  }

private:
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  caf::actor_clock::time_point start_{};
};

} // namespace kullsync::sim

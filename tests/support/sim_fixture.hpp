#pragma once

// A GoogleTest-friendly deterministic actor system: CAF's testing scheduler,
// driven by hand, with virtual time.

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "kullsync/client/caf_types.hpp"
#include "kullsync/testing/sim_network.hpp"

namespace kullsync::test {

class sim_system {
public:
  sim_system() {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    cfg_.set("logger.file-verbosity", caf::atom("quiet"));
    cfg_.set("logger.console-verbosity", caf::atom("quiet"));
    add_client_types(cfg_);
    sim::add_sim_types(cfg_);
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

  /// Asks `h` and runs the system until the answer is there.
  template <class T, class Handle, class... Ts>
  T ask(const Handle& h, Ts... xs) {
    T result{};
    bool done = false;
    sys_->spawn([&, h](caf::event_based_actor* self) {
      self->request(h, caf::infinite, xs...).then([&](T& x) {
        result = std::move(x);
        done = true;
      });
    });
    run();
    if (!done)
      throw std::runtime_error("no answer");
    return result;
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

/// The seeds a simulation plays: KULLSYNC_SIM_SEED=S alone, else
/// 1..KULLSYNC_SIM_SEEDS (default `dflt`).
inline std::vector<uint64_t> sim_seeds(uint64_t dflt) {
  std::vector<uint64_t> seeds;
  if (auto* one = std::getenv("KULLSYNC_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
    return seeds;
  }
  auto* n = std::getenv("KULLSYNC_SIM_SEEDS");
  auto count = n ? std::strtoull(n, nullptr, 10) : dflt;
  for (uint64_t s = 1; s <= count; ++s)
    seeds.push_back(s);
  return seeds;
}

} // namespace kullsync::test

#pragma once

// A GoogleTest-friendly deterministic actor system: CAF's testing scheduler,
// driven by hand, with virtual time.

#include <chrono>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "kullsync/client/caf_types.hpp"

namespace kullsync::test {

class sim_system {
public:
  sim_system() {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    cfg_.set("logger.file-verbosity", caf::atom("quiet"));
    cfg_.set("logger.console-verbosity", caf::atom("quiet"));
    add_client_types(cfg_);
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

} // namespace kullsync::test

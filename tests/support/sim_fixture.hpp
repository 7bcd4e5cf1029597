#pragma once

// A GoogleTest-friendly deterministic actor system: CAF's testing scheduler,
// driven by hand, with virtual time.

#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

/// A seed count or seed from the environment: a whole number, else the
/// run stops with the variable named (a typo must not play zero seeds).
inline uint64_t sim_env_number(const char* name, const char* text, uint64_t min) {
  char* end = nullptr;
  errno = 0;
  auto v = std::strtoull(text, &end, 10);
  if (*text < '0' || *text > '9' || *end != '\0' || errno == ERANGE || v < min)
    throw std::invalid_argument(std::string{name} + "='" + text + "': expected a whole number >= "
                                + std::to_string(min));
  return v;
}

/// The seeds a simulation plays: KULLSYNC_SIM_SEED=S alone, else
/// KULLSYNC_SIM_SEEDS of them (default `dflt`) from KULLSYNC_SIM_FIRST_SEED
/// (default 1: what CI plays is the same every run; another first seed
/// explores new ones).
inline std::vector<uint64_t> sim_seeds(uint64_t dflt) {
  std::vector<uint64_t> seeds;
  if (auto* one = std::getenv("KULLSYNC_SIM_SEED")) {
    seeds.push_back(sim_env_number("KULLSYNC_SIM_SEED", one, 0));
    return seeds;
  }
  auto* n = std::getenv("KULLSYNC_SIM_SEEDS");
  auto count = n ? sim_env_number("KULLSYNC_SIM_SEEDS", n, 1) : dflt;
  auto* f = std::getenv("KULLSYNC_SIM_FIRST_SEED");
  auto first = f ? sim_env_number("KULLSYNC_SIM_FIRST_SEED", f, 0) : 1;
  if (first > UINT64_MAX - count)
    throw std::invalid_argument("KULLSYNC_SIM_FIRST_SEED + KULLSYNC_SIM_SEEDS is beyond 2^64");
  for (uint64_t s = first; s < first + count; ++s)
    seeds.push_back(s);
  return seeds;
}

/// The command that plays `seed` of the running test alone (from the
/// repository's root, with the default build tree).
inline std::string replay_command(uint64_t seed) {
  auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string suite = t ? t->test_suite_name() : "";
  std::string name = t ? t->name() : "";
  return "KULLSYNC_SIM_SEED=" + std::to_string(seed) + " build/tests/" + suite
         + "_test --gtest_filter='" + suite + "." + name + "'";
}

} // namespace kullsync::test

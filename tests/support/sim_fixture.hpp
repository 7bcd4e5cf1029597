#pragma once

// The project's simulations under GoogleTest: the kit's deterministic actor
// system (kullsync/testing/sim_system.hpp), the seeds a run plays, and the
// command that replays one.

#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kullsync/testing/sim_system.hpp"

namespace kullsync::test {

using sim::sim_system;

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

#pragma once

/// Epoch time that follows the actor system's clock: virtual time in a
/// simulation, the wall clock in production.

#include <chrono>
#include <cstdint>
#include <optional>

#include <caf/fwd.hpp>

namespace kullsync {

/// Milliseconds of the steady clock: for intervals (log throttles, probes),
/// which a step of the wall clock must not stretch or shut.
inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// Maps the actor clock onto epoch time.
struct wall_clock {
  int64_t start_epoch_ms = 0;
  int64_t start_clock_ns = 0; // actor clock at start, ns since its epoch
};

/// Epoch milliseconds now, per `clock` and the actor system's clock.
int64_t epoch_ms(caf::actor_system& sys, const wall_clock& clock);

/// A wall_clock anchored at the system's clock now; `start_ms` overrides the
/// epoch time of that instant (simulations pass a fixed one).
wall_clock make_wall_clock(caf::actor_system& sys,
                           std::optional<int64_t> start_ms = {});

} // namespace kullsync

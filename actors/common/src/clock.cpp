#include "kullsync/common/clock.hpp"

#include <chrono>

#include <caf/actor_clock.hpp>
#include <caf/actor_system.hpp>

namespace kullsync {

namespace {

int64_t clock_ns(caf::actor_system& sys) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           sys.clock().now().time_since_epoch())
    .count();
}

} // namespace

int64_t epoch_ms(caf::actor_system& sys, const wall_clock& clock) {
  return clock.start_epoch_ms + (clock_ns(sys) - clock.start_clock_ns) / 1000000;
}

wall_clock make_wall_clock(caf::actor_system& sys,
                           std::optional<int64_t> start_ms) {
  wall_clock c;
  c.start_clock_ns = clock_ns(sys);
  c.start_epoch_ms
    = start_ms ? *start_ms
               : std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  return c;
}

} // namespace kullsync

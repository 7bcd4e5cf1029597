#pragma once

// Private to the broker: its clocks, for the probe, its links' patience and
// the history's lifetime.

#include <chrono>
#include <cstdint>

#include "kullsync/common/clock.hpp"

namespace kullsync::broker {

using kullsync::steady_ms;

/// Wall time (epoch ms): deadlines other nodes read, and the age of a
/// stream's messages (written with their publisher's wall clock).
inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace kullsync::broker

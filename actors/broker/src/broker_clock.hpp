#pragma once

// Private to the broker: its clock for the probe and its links' patience.

#include <chrono>
#include <cstdint>

namespace kullsync::broker {

/// Milliseconds of the steady clock.
inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

} // namespace kullsync::broker

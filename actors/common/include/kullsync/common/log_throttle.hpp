#pragma once

/// Says when to log a thing that repeats (a refusal per frame, a failure per
/// tick) again: at most once per interval. No CAF.

#include <cstdint>

namespace kullsync {

class log_throttle {
public:
  /// True at the first call, then once `interval_ms` has passed since the
  /// last true.
  bool should_log(int64_t now_ms, int64_t interval_ms = 10'000) {
    if (last_ms_ != 0 && now_ms - last_ms_ < interval_ms)
      return false;
    last_ms_ = now_ms;
    return true;
  }

  /// The next call logs: the thing stopped, and its return is news again.
  void reset() { last_ms_ = 0; }

private:
  int64_t last_ms_ = 0;
};

} // namespace kullsync

#pragma once

/// Says when to log a thing that repeats (a refusal per frame, a failure per
/// tick) again: at most once per interval. No CAF.

#include <cstdint>
#include <mutex>
#include <optional>

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

/// Lines of one kind that many actors log, one per event (a socket refused
/// for its token): at most `per_window` per window; the others are counted
/// and said with the next line let through. Thread-safe.
class log_budget {
public:
  explicit log_budget(uint32_t per_window = 20, int64_t window_ms = 10'000)
    : per_window_(per_window), window_ms_(window_ms) {
    // nop
  }

  /// Nothing when this line is held back; else how many were since the
  /// last one let through.
  std::optional<uint64_t> take(int64_t now_ms) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (now_ms - start_ms_ >= window_ms_) {
      start_ms_ = now_ms;
      used_ = 0;
    }
    if (used_ >= per_window_) {
      ++held_;
      return std::nullopt;
    }
    ++used_;
    auto held = held_;
    held_ = 0;
    return held;
  }

private:
  std::mutex mtx_;
  uint32_t per_window_;
  int64_t window_ms_;
  int64_t start_ms_ = INT64_MIN / 2;
  uint32_t used_ = 0;
  uint64_t held_ = 0;
};

} // namespace kullsync

#pragma once

// Private to the server: the token bucket behind every rate limit (client
// messages per socket, upgrades per address, requests per API key), and a
// table of buckets per key that forgets idle keys; refusals are logged per
// socket, per address, through a log_throttle. No CAF.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "kullsync/common/log_throttle.hpp"

namespace kullsync::server {

/// `rate` tokens a second, at most `burst` saved up; starts full.
class token_bucket {
public:
  token_bucket() = default;
  token_bucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}

  /// Takes one token at `now_ms`; false when there is none.
  bool take(int64_t now_ms) {
    refill(now_ms);
    if (tokens_ < 1.0)
      return false;
    tokens_ -= 1.0;
    return true;
  }

  /// True once the bucket has refilled completely: nothing to remember.
  bool full(int64_t now_ms) {
    refill(now_ms);
    return tokens_ >= burst_;
  }

private:
  void refill(int64_t now_ms) {
    if (last_ms_ != 0 && now_ms > last_ms_)
      tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000.0);
    last_ms_ = std::max(last_ms_, now_ms);
  }

  double rate_ = 0;
  double burst_ = 0;
  double tokens_ = 0;
  int64_t last_ms_ = 0;
};

/// One bucket per key (an address, an API key). Keys whose bucket is full
/// again are forgotten every so often, so the table holds only the keys
/// active within about `burst / rate` seconds.
class bucket_table {
public:
  bucket_table(double rate, double burst) : rate_(rate), burst_(burst) {}

  bool take(const std::string& key, int64_t now_ms) {
    if (++calls_ % 4096 == 0)
      prune(now_ms);
    auto i = buckets_.find(key);
    if (i == buckets_.end())
      i = buckets_.emplace(key, token_bucket{rate_, burst_}).first;
    return i->second.take(now_ms);
  }

  size_t size() const { return buckets_.size(); }

  void prune(int64_t now_ms) {
    for (auto i = buckets_.begin(); i != buckets_.end();)
      i = i->second.full(now_ms) ? buckets_.erase(i) : std::next(i);
  }

private:
  double rate_;
  double burst_;
  uint64_t calls_ = 0;
  std::unordered_map<std::string, token_bucket> buckets_;
};

} // namespace kullsync::server

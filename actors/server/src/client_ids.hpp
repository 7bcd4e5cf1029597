#pragma once

// Private to the server: which client message ids (and HTTP Idempotency-Keys)
// a hub shard has already taken into a user's stream, and at which position,
// so that a resent message is answered with its first ACK instead of being
// applied twice. Kept at least as long as the history (`ttl_ms`), and at
// most `capacity` per shard (the oldest forgotten first). No CAF.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

namespace kullsync::server {

class client_ids {
public:
  client_ids(int64_t ttl_ms, size_t capacity) : ttl_ms_(ttl_ms), capacity_(capacity) {}

  /// The position `key` (user and id) was taken at, if it is known.
  std::optional<uint64_t> find(const std::string& key) const {
    auto i = seen_.find(key);
    if (i == seen_.end())
      return std::nullopt;
    return i->second;
  }

  void remember(std::string key, uint64_t seq, int64_t now_ms) {
    if (seen_.count(key) != 0)
      return;
    seen_.emplace(key, seq);
    order_.push_back({std::move(key), now_ms});
    while (order_.size() > capacity_)
      forget_oldest();
  }

  /// Forgets what is older than the history.
  void expire(int64_t now_ms) {
    while (!order_.empty() && now_ms - order_.front().at_ms > ttl_ms_)
      forget_oldest();
  }

  size_t size() const { return seen_.size(); }

  /// `user` and `id` as one key, unambiguously (the user's length first).
  static std::string key(const std::string& user, const std::string& id) {
    auto k = std::to_string(user.size());
    k += ':';
    k += user;
    k += id;
    return k;
  }

private:
  struct entry {
    std::string key;
    int64_t at_ms;
  };

  void forget_oldest() {
    seen_.erase(order_.front().key);
    order_.pop_front();
  }

  int64_t ttl_ms_;
  size_t capacity_;
  std::unordered_map<std::string, uint64_t> seen_;
  std::deque<entry> order_;
};

} // namespace kullsync::server

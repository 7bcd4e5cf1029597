#include "kullsync/common/shoot_table.hpp"

namespace kullsync {

bool shoot_table::is_stale(const msg::shoot_progress& now, int64_t now_at,
                           const msg::shoot_progress& p, int64_t at) {
  if (msg::is_terminal(p.status))
    return false;
  if (msg::is_terminal(now.status))
    return at != 0 && now_at != 0 && at < now_at;
  return p.processed_count < now.processed_count;
}

std::optional<uint64_t> shoot_table::put(const msg::shoot_progress& p, int64_t at) {
  auto i = shoots_.find(p.shoot_id);
  if (i != shoots_.end() && is_stale(i->second, last_[p.shoot_id].at, p, at))
    return std::nullopt;
  if (i == shoots_.end() && capacity_ != 0) {
    while (shoots_.size() >= capacity_ && !by_version_.empty()) {
      ++evicted_;
      forget(last_.find(by_version_.begin()->second));
    }
  }
  shoots_[p.shoot_id] = p;
  auto& last = last_[p.shoot_id];
  if (last.version != 0)
    by_version_.erase(last.version);
  last.version = ++next_version_;
  last.at = at;
  by_version_.emplace(last.version, p.shoot_id);
  if (msg::is_terminal(p.status))
    return last.version;
  return std::nullopt;
}

bool shoot_table::expire(const std::string& shoot_id, uint64_t version) {
  auto i = last_.find(shoot_id);
  if (i == last_.end() || i->second.version != version)
    return false; // updated since: a newer expiry (or none) decides
  forget(i);
  return true;
}

void shoot_table::forget(std::map<std::string, last_event>::iterator i) {
  if (i == last_.end())
    return;
  by_version_.erase(i->second.version);
  shoots_.erase(i->first);
  last_.erase(i);
}

void shoot_table::erase(const std::string& shoot_id) {
  forget(last_.find(shoot_id));
}

void shoot_table::clear() {
  last_.clear();
  shoots_.clear();
  by_version_.clear();
}

size_t shoot_table::drop_idle(int64_t before) {
  size_t n = 0;
  for (auto i = last_.begin(); i != last_.end();) {
    auto next = std::next(i);
    if (i->second.at < before) {
      forget(i);
      ++n;
    }
    i = next;
  }
  evicted_ += n;
  return n;
}

} // namespace kullsync

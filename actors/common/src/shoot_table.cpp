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
  auto& last = last_[p.shoot_id];
  if (i != shoots_.end() && is_stale(i->second, last.at, p, at))
    return std::nullopt;
  shoots_[p.shoot_id] = p;
  last.version = ++next_version_;
  last.at = at;
  if (msg::is_terminal(p.status))
    return last.version;
  return std::nullopt;
}

bool shoot_table::expire(const std::string& shoot_id, uint64_t version) {
  auto i = last_.find(shoot_id);
  if (i == last_.end() || i->second.version != version)
    return false; // updated since: a newer expiry (or none) decides
  last_.erase(i);
  shoots_.erase(shoot_id);
  return true;
}

void shoot_table::erase(const std::string& shoot_id) {
  last_.erase(shoot_id);
  shoots_.erase(shoot_id);
}

void shoot_table::clear() {
  last_.clear();
  shoots_.clear();
}

} // namespace kullsync

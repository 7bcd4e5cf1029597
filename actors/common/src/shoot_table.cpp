#include "kullsync/common/shoot_table.hpp"

namespace kullsync {

std::optional<uint64_t> shoot_table::put(const msg::shoot_progress& p) {
  shoots_[p.shoot_id] = p;
  auto v = ++next_version_;
  versions_[p.shoot_id] = v;
  if (msg::is_terminal(p.status))
    return v;
  return std::nullopt;
}

bool shoot_table::expire(const std::string& shoot_id, uint64_t version) {
  auto i = versions_.find(shoot_id);
  if (i == versions_.end() || i->second != version)
    return false; // updated since: a newer expiry (or none) decides
  versions_.erase(i);
  shoots_.erase(shoot_id);
  return true;
}

void shoot_table::erase(const std::string& shoot_id) {
  versions_.erase(shoot_id);
  shoots_.erase(shoot_id);
}

void shoot_table::clear() {
  versions_.clear();
  shoots_.clear();
}

} // namespace kullsync

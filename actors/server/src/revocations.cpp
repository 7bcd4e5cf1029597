#include "kullsync/server/revocations.hpp"

#include <algorithm>

namespace kullsync::server {

void revocation_list::add(const revocation& r) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto [i, added] = by_user_.emplace(r.user, r);
  if (!added) {
    i->second.before_ms = std::max(i->second.before_ms, r.before_ms);
    i->second.until_ms = std::max(i->second.until_ms, r.until_ms);
  }
}

bool revocation_list::revoked(const std::string& user, std::optional<int64_t> issued_at_ms,
                              int64_t now_ms) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_user_.find(user);
  if (i == by_user_.end() || i->second.until_ms <= now_ms)
    return false;
  return !issued_at_ms || *issued_at_ms < i->second.before_ms;
}

std::vector<revocation> revocation_list::in_force(int64_t now_ms) {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<revocation> out;
  for (auto i = by_user_.begin(); i != by_user_.end();) {
    if (i->second.until_ms <= now_ms) {
      i = by_user_.erase(i);
    } else {
      out.push_back(i->second);
      ++i;
    }
  }
  return out;
}

} // namespace kullsync::server

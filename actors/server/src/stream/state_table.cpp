#include "state_table.hpp"

namespace kullsync::server {

namespace {

// Map and index nodes besides the texts.
constexpr size_t value_overhead = 160;

size_t cost(const std::string& field, const state_table::value& v) {
  return field.size() * 3 + v.frame.size() + value_overhead;
}

} // namespace

state_change state_table::put(const state_update& u, const std::string& frame, int64_t now) {
  auto i = values_.find(u.field);
  // A finished shoot whose linger is over no longer makes anything stale.
  if (i != values_.end() && i->second.until != 0 && i->second.until <= now) {
    erase(i);
    i = values_.end();
  }
  if (i != values_.end() && !u.terminal && u.rank != -1) {
    auto& cur = i->second;
    bool replaces = cur.terminal ? !(u.at != 0 && cur.at != 0 && u.at < cur.at)
                                 : u.rank >= cur.rank;
    if (!replaces)
      return {};
  }
  if (i == values_.end())
    make_room(now, is_shoot(u.field));
  value v{frame, u.terminal, u.rank, u.at,
          u.terminal && u.linger_ms > 0 ? now + u.linger_ms : 0, now};
  state_change c{u.field, v.until, now};
  store(u.field, std::move(v));
  return c;
}

void state_table::mirror(const state_change& c, const std::string& frame) {
  if (c.field.empty())
    return;
  auto i = values_.find(c.field);
  if (i != values_.end() && i->second.until != 0 && i->second.until <= c.updated) {
    erase(i);
    i = values_.end();
  }
  if (i == values_.end())
    make_room(c.updated, is_shoot(c.field));
  value v;
  v.frame = frame;
  v.terminal = c.until != 0;
  v.until = c.until;
  v.updated = c.updated;
  store(c.field, std::move(v));
}

void state_table::mirror(const state_frame& f) {
  value v;
  v.frame = f.frame;
  v.terminal = f.until != 0;
  v.until = f.until;
  v.updated = f.updated;
  store(f.field, std::move(v));
}

void state_table::make_room(int64_t now, bool shoot) {
  while (!by_until_.empty() && by_until_.begin()->first <= now)
    erase(values_.find(by_until_.begin()->second));
  if (idle_ms_ > 0)
    while (!by_update_.empty() && by_update_.begin()->first < now - idle_ms_) {
      erase(values_.find(by_update_.begin()->second));
      ++evicted_;
    }
  if (shoot && max_shoots_ > 0)
    while (by_update_.size() >= max_shoots_) {
      erase(values_.find(by_update_.begin()->second));
      ++evicted_;
    }
}

void state_table::store(const std::string& field, value v) {
  auto i = values_.find(field);
  if (i != values_.end())
    erase(i);
  if (is_shoot(field))
    by_update_.emplace(v.updated, field);
  if (v.until != 0)
    by_until_.emplace(v.until, field);
  bytes_ += cost(field, v);
  values_.emplace(field, std::move(v));
}

void state_table::erase(std::map<std::string, value>::iterator i) {
  if (i == values_.end())
    return;
  by_update_.erase({i->second.updated, i->first});
  if (i->second.until != 0)
    by_until_.erase({i->second.until, i->first});
  bytes_ -= cost(i->first, i->second);
  values_.erase(i);
}

std::vector<state_frame> state_table::shown(int64_t now) const {
  std::vector<state_frame> out;
  out.reserve(values_.size());
  for (auto& [field, v] : values_)
    if (v.until == 0 || v.until > now)
      out.push_back({field, v.frame, v.until, v.updated});
  return out;
}

std::vector<state_frame> state_table::all() const {
  std::vector<state_frame> out;
  out.reserve(values_.size());
  for (auto& [field, v] : values_)
    out.push_back({field, v.frame, v.until, v.updated});
  return out;
}

void state_table::clear() {
  values_.clear();
  by_update_.clear();
  by_until_.clear();
  bytes_ = 0;
}

} // namespace kullsync::server

#include "state_table.hpp"

namespace kullsync::server {

namespace {

// Map and index nodes besides the texts.
constexpr size_t value_overhead = 160;

size_t cost(const std::string& field, const state_table::value& v) {
  return field.size() * 3 + v.frame.str().size() + value_overhead;
}

state_frame text_of(const std::string& field, const state_table::value& v) {
  return {field, v.seq ? without_seq(v.frame.str(), v.seq) : v.frame.str(), v.until,
          v.updated};
}

} // namespace

state_table::tables& state_table::own() {
  if (!t_)
    t_ = std::make_unique<tables>();
  return *t_;
}

state_change state_table::put(const state_update& u, const shared_frame& frame, uint64_t seq,
                              int64_t now) {
  auto& values_ = own().values;
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
  value v{frame, seq, u.terminal, u.rank, u.at,
          u.terminal && u.linger_ms > 0 ? now + u.linger_ms : 0, now};
  state_change c{u.field, v.until, now};
  store(u.field, std::move(v));
  return c;
}

void state_table::mirror(const state_change& c, const shared_frame& frame, uint64_t seq) {
  if (c.field.empty())
    return;
  auto& values_ = own().values;
  auto i = values_.find(c.field);
  if (i != values_.end() && i->second.until != 0 && i->second.until <= c.updated) {
    erase(i);
    i = values_.end();
  }
  if (i == values_.end())
    make_room(c.updated, is_shoot(c.field));
  value v;
  v.frame = frame;
  v.seq = seq;
  v.terminal = c.until != 0;
  v.until = c.until;
  v.updated = c.updated;
  store(c.field, std::move(v));
}

void state_table::mirror(const state_frame& f) {
  value v;
  v.frame = make_shared_frame(f.frame);
  v.terminal = f.until != 0;
  v.until = f.until;
  v.updated = f.updated;
  store(f.field, std::move(v));
}

void state_table::make_room(int64_t now, bool shoot) {
  auto& [values_, by_update_, by_until_] = own();
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

using index_type = std::set<std::pair<int64_t, std::string>>; // state_table::index

/// Re-keys `field`'s entry of an index from `was` to `now` (`had` / `has`:
/// whether it is in the index before / after), reusing its node: an update
/// allocates nothing.
void rekey(index_type& index, const std::string& field, int64_t was, bool had, int64_t now,
           bool has) {
  if (had && has && was == now)
    return;
  index_type::node_type node;
  if (had)
    node = index.extract({was, field});
  if (!has)
    return;
  if (node.empty()) {
    index.emplace(now, field);
    return;
  }
  node.value().first = now;
  index.insert(std::move(node));
}

void state_table::store(const std::string& field, value v) {
  auto& [values_, by_update_, by_until_] = own();
  auto i = values_.find(field);
  if (i == values_.end()) {
    if (is_shoot(field))
      by_update_.emplace(v.updated, field);
    if (v.until != 0)
      by_until_.emplace(v.until, field);
    bytes_ += cost(field, v);
    values_.emplace(field, std::move(v));
    return;
  }
  // An update in place: the map's node and the indexes' nodes are kept.
  auto& cur = i->second;
  bool shoot = is_shoot(field);
  rekey(by_update_, field, cur.updated, shoot, v.updated, shoot);
  rekey(by_until_, field, cur.until, cur.until != 0, v.until, v.until != 0);
  bytes_ = bytes_ - cost(field, cur) + cost(field, v);
  cur = std::move(v);
}

void state_table::erase(std::map<std::string, value>::iterator i) {
  auto& [values_, by_update_, by_until_] = own();
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
  if (!t_)
    return out;
  out.reserve(t_->values.size());
  for (auto& [field, v] : t_->values)
    if (v.until == 0 || v.until > now)
      out.push_back(text_of(field, v));
  return out;
}

std::vector<state_frame> state_table::all() const {
  std::vector<state_frame> out;
  if (!t_)
    return out;
  out.reserve(t_->values.size());
  for (auto& [field, v] : t_->values)
    out.push_back(text_of(field, v));
  return out;
}

void state_table::clear() {
  t_.reset();
  bytes_ = 0;
}

} // namespace kullsync::server

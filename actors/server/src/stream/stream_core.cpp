#include "stream_core.hpp"

#include <algorithm>
#include <tuple>
#include <limits>
#include <vector>

namespace kullsync::server {

namespace {

// What one stored message costs besides its text: the entry, the message,
// its control block, the order entry.
constexpr size_t entry_overhead = 160;

size_t cost(const message_ptr& m) {
  return m->frame.str().size() + entry_overhead;
}

} // namespace

struct stream_core::saved {
  stream copy;
};

stream_core::stream_core(std::string epoch_prefix, stream_limits limits)
  : prefix_(std::move(epoch_prefix)), limits_(limits) {
}

stream_core::~stream_core() = default;

const std::shared_ptr<stream_core::stream>& stream_core::open(const std::string& user,
                                                              int64_t now) {
  auto& p = streams_[user];
  if (!p) {
    p = std::make_shared<stream>(limits_);
    p->last_write = now;
    ++stats_.streams;
  }
  auto& s = *p;
  if (s.run != run_) {
    // A new stream, or its history lost: a new epoch. Its messages go (they
    // belong to the old one) and positions go on, as the Redis script does.
    s.run = run_;
    s.key = make_key(user, prefix_ + "-" + std::to_string(++epochs_));
    while (!s.entries.empty())
      drop_front(s);
  }
  expire(s, now);
  return p;
}

void stream_core::drop_front(stream& s) {
  stats_.history_bytes -= cost(s.entries.front().msg);
  --stats_.entries;
  ++stats_.evicted;
  s.entries.pop_front();
}

void stream_core::expire(stream& s, int64_t now) {
  while (!s.entries.empty() && now - s.entries.front().at > limits_.history_ttl_ms)
    drop_front(s);
  if (!s.dedup)
    return;
  auto& d = *s.dedup;
  while (!d.order.empty()) {
    auto i = d.answers.find(d.order.front());
    if (i != d.answers.end() && now - i->second.at <= limits_.dedup_ttl_ms)
      break;
    if (i != d.answers.end()) {
      d.answers.erase(i);
      --stats_.dedup_keys;
    }
    d.order.pop_front();
  }
  if (d.order.empty())
    s.dedup.reset();
}

publish_receipt stream_core::publish(publish_request req, message_ptr* out) {
  auto& handle = open(req.user, req.now);
  auto& s = *handle;
  // A key answers within its epoch only: a stream that lost its history (a
  // failover) takes a resent message again, once in the new epoch, rather
  // than answer a position of the old one that its devices cannot trust.
  if (!req.dedup_key.empty() && s.dedup)
    if (auto i = s.dedup->answers.find(req.dedup_key);
        i != s.dedup->answers.end() && i->second.epoch == s.key->epoch)
      return {i->second.seq, i->second.epoch, true};
  if (req.presence) {
    auto node = node_index(req.presence->node);
    auto i = std::find_if(s.presence.begin(), s.presence.end(), [&](auto& d) {
      return d.node == node && d.device == req.presence->device;
    });
    if (!req.present) {
      if (i != s.presence.end())
        s.presence.erase(i);
    } else if (i != s.presence.end()) {
      i->connected_at = req.presence->connected_at;
      i->protocol = req.presence->protocol;
    } else {
      s.presence.push_back(
        {node, req.presence->protocol, req.presence->connected_at, req.presence->device});
    }
  }
  // The message is built once (its v2 text made in place) and shared by
  // the history, the state and every socket it goes to.
  auto msg = std::make_shared<stream_message>();
  msg->key = s.key;
  if (!req.numbered) // only a message that is not numbered needs its origin
    msg->origin = std::move(req.origin);
  msg->presence = std::move(req.presence);
  msg->present = req.present;
  msg->control = req.control;
  if (req.numbered && !req.control) {
    msg->seq = ++s.top;
    msg->frame = make_shared_frame(with_seq(std::move(req.frame), msg->seq));
    if (!req.state.field.empty()) {
      auto before = s.state.bytes();
      auto evicted = s.state.evicted();
      msg->state = s.state.put(req.state, msg->frame, msg->seq, req.now);
      stats_.state_bytes = stats_.state_bytes - before + s.state.bytes();
      stats_.fields_evicted += s.state.evicted() - evicted;
    }
  } else {
    msg->frame = make_shared_frame(std::move(req.frame));
  }
  auto seq = msg->seq;
  message_ptr m = std::move(msg);
  if (seq != 0) {
    s.entries.push_back({req.now, m});
    stats_.history_bytes += cost(m);
    ++stats_.entries;
    order_.push_back({handle, seq});
    if (s.entries.size() > limits_.history_size)
      drop_front(s);
    enforce_history_bytes();
  }
  if (!req.dedup_key.empty()) {
    if (!s.dedup)
      s.dedup = std::make_unique<stream::dedup_keys>();
    auto& d = *s.dedup;
    auto [i, added] = d.answers.insert_or_assign(req.dedup_key,
                                                 dedup_answer{seq, s.key->epoch, req.now});
    (void) i;
    d.order.push_back(req.dedup_key);
    stats_.dedup_keys += added ? 1 : 0;
    while (d.answers.size() > limits_.dedup_per_user) {
      if (d.answers.erase(d.order.front()))
        --stats_.dedup_keys;
      d.order.pop_front();
    }
  }
  s.last_write = req.now;
  if (out)
    *out = std::move(m);
  return {seq, s.key->epoch, false};
}

void stream_core::enforce_history_bytes() {
  // Over the memory bound: the oldest messages of any user go first.
  while (stats_.history_bytes > limits_.history_bytes && !order_.empty()) {
    auto oldest = order_.front();
    order_.pop_front();
    auto st = oldest.s.lock();
    if (st && !st->entries.empty() && st->entries.front().msg->seq == oldest.seq)
      drop_front(*st);
  }
  // Messages that left by size or age leave their order entries behind,
  // anywhere in the order (an idle user's old message may stay in front):
  // once they are as many as the messages kept, every one goes in one pass
  // (amortised O(1) per publish, and the order stays within twice the
  // messages kept).
  if (order_.size() <= 2 * stats_.entries + 64)
    return;
  order_.erase(std::remove_if(order_.begin(), order_.end(),
                              [](const appended& a) {
                                auto st = a.s.lock();
                                return !st || st->entries.empty()
                                       || st->entries.front().msg->seq > a.seq;
                              }),
               order_.end());
}

stream_range stream_core::read(const std::string& user, const std::string& epoch,
                               uint64_t since, uint64_t upto, int64_t now) {
  auto& s = *open(user, now);
  stream_range r;
  r.epoch = s.key->epoch;
  if (epoch != s.key->epoch || since > s.top)
    return r;
  upto = std::min(upto, s.top);
  if (since >= upto) {
    r.complete = true;
    return r;
  }
  // Every message after `since` must still be here.
  if (s.entries.empty() || s.entries.front().msg->seq > since + 1)
    return r;
  r.complete = true;
  auto first = s.entries.front().msg->seq;
  r.messages.reserve(upto - since);
  for (auto seq = since + 1; seq <= upto; ++seq)
    r.messages.push_back(s.entries[seq - first].msg);
  return r;
}

stream_head stream_core::head(const std::string& user, int64_t now,
                              const std::function<bool(const std::string&)>& alive) {
  auto& s = *open(user, now);
  stream_head h;
  h.epoch = s.key->epoch;
  h.top = s.top;
  h.first = s.entries.empty() ? 0 : s.entries.front().msg->seq;
  h.state = s.state.all();
  for (auto& d : s.presence)
    if (!alive || alive(nodes_[d.node]))
      h.devices.push_back({nodes_[d.node], d.device, d.connected_at, d.protocol});
  // By node, then device, whatever the order they came in.
  std::sort(h.devices.begin(), h.devices.end(), [](auto& x, auto& y) {
    return std::tie(x.node, x.device) < std::tie(y.node, y.device);
  });
  return h;
}

void stream_core::forget(std::unordered_map<std::string, std::shared_ptr<stream>>::iterator i) {
  ++stats_.users_forgotten;
  erase(i);
}

void stream_core::erase(std::unordered_map<std::string, std::shared_ptr<stream>>::iterator i) {
  auto& s = *i->second;
  while (!s.entries.empty())
    drop_front(s);
  stats_.state_bytes -= s.state.bytes();
  stats_.dedup_keys -= s.dedup ? s.dedup->answers.size() : 0;
  --stats_.streams;
  streams_.erase(i);
}

void stream_core::sweep(int64_t now, const std::function<bool(const std::string&)>& keep) {
  for (auto i = streams_.begin(); i != streams_.end();) {
    auto next = std::next(i);
    auto& s = *i->second;
    expire(s, now);
    // Nothing left to resume from, nothing written for long, nobody here:
    // forgotten (its next opening is a new epoch).
    if (s.entries.empty() && now - s.last_write > limits_.user_idle_ms
        && (!keep || !keep(i->first)))
      forget(i);
    i = next;
  }
  enforce_history_bytes();
  enforce_state_bytes(keep);
}

void stream_core::enforce_state_bytes(const std::function<bool(const std::string&)>& keep) {
  if (stats_.state_bytes <= limits_.state_bytes)
    return;
  std::vector<std::pair<int64_t, std::string>> idle;
  for (auto& [user, s] : streams_)
    if (!keep || !keep(user))
      idle.emplace_back(s->last_write, user);
  std::sort(idle.begin(), idle.end());
  // Down to 90%, so that the next few writes do not sort again.
  auto target = limits_.state_bytes / 10 * 9;
  for (auto& [at, user] : idle) {
    if (stats_.state_bytes <= target)
      break;
    forget(streams_.find(user));
  }
}

void stream_core::new_run() {
  ++run_;
}

std::shared_ptr<const stream_core::saved> stream_core::save(const std::string& user) const {
  auto i = streams_.find(user);
  if (i == streams_.end())
    return nullptr;
  return std::make_shared<const saved>(saved{*i->second});
}

void stream_core::restore(const std::string& user, const std::shared_ptr<const saved>& s) {
  if (auto i = streams_.find(user); i != streams_.end())
    erase(i);
  if (!s)
    return;
  auto p = std::make_shared<stream>(s->copy);
  p->entries.for_each([&](entry& e) {
    stats_.history_bytes += cost(e.msg);
    ++stats_.entries;
    order_.push_back({p, e.msg->seq});
  });
  stats_.state_bytes += p->state.bytes();
  stats_.dedup_keys += p->dedup ? p->dedup->answers.size() : 0;
  ++stats_.streams;
  streams_[user] = std::move(p);
}

uint32_t stream_core::node_index(const std::string& node) {
  for (uint32_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i] == node)
      return i;
  nodes_.push_back(node);
  return static_cast<uint32_t>(nodes_.size() - 1);
}

stream_stats stream_core::stats() const {
  return stats_;
}

} // namespace kullsync::server

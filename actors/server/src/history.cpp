#include "kullsync/server/history.hpp"

namespace kullsync::server {

namespace {

// What one stored frame costs besides its text: the entry, the frame's
// control block and string, the order entry.
constexpr size_t entry_overhead = 112;

size_t cost(const shared_frame& f) {
  return f.str().size() + entry_overhead;
}

} // namespace

memory_history::memory_history(std::string node_epoch, history_limits limits)
  : node_epoch_(std::move(node_epoch)), limits_(limits) {
}

const std::shared_ptr<memory_history::stream>&
memory_history::open(const std::string& user, int64_t now_ms) {
  auto& s = streams_[user];
  if (!s) {
    s = std::make_shared<stream>();
    // A stream forgotten and opened again must not reuse positions of the
    // old one: each opening is a new epoch.
    s->epoch = node_epoch_ + "-" + std::to_string(++next_stream_);
    s->last_append_ms = now_ms;
    ++stats_.streams;
  }
  expire(*s, now_ms);
  return s;
}

void memory_history::drop_front(stream& s) {
  stats_.bytes -= cost(s.entries.front().frame);
  --stats_.entries;
  ++stats_.evicted;
  s.entries.pop_front();
}

void memory_history::expire(stream& s, int64_t now_ms) {
  while (!s.entries.empty() && now_ms - s.entries.front().at_ms > limits_.ttl_ms)
    drop_front(s);
}

const std::string& memory_history::epoch(const std::string& user, int64_t now_ms) {
  return open(user, now_ms)->epoch;
}

uint64_t memory_history::top(const std::string& user, int64_t now_ms) {
  return open(user, now_ms)->top;
}

shared_frame memory_history::append(
  const std::string& user, int64_t now_ms,
  const std::function<shared_frame(uint64_t)>& frame_for) {
  auto& handle = open(user, now_ms);
  auto& s = *handle;
  auto seq = ++s.top;
  auto f = frame_for(seq);
  s.last_append_ms = now_ms;
  s.entries.push_back({seq, now_ms, f});
  stats_.bytes += cost(f);
  ++stats_.entries;
  order_.push_back({handle, seq});
  if (s.entries.size() > limits_.size)
    drop_front(s);
  // Over the memory bound: the oldest frames of any user go first.
  while (stats_.bytes > limits_.memory_bytes && !order_.empty()) {
    auto oldest = order_.front();
    order_.pop_front();
    auto st = oldest.s.lock();
    if (st && !st->entries.empty() && st->entries.front().seq == oldest.seq)
      drop_front(*st);
  }
  // Entries that left by size or age leave their order entries behind.
  while (!order_.empty()) {
    auto st = order_.front().s.lock();
    if (st && !st->entries.empty() && st->entries.front().seq <= order_.front().seq)
      break;
    order_.pop_front();
  }
  return f;
}

std::optional<std::vector<shared_frame>>
memory_history::read_after(const std::string& user, const std::string& epoch,
                           uint64_t since, int64_t now_ms) {
  auto& s = *open(user, now_ms);
  if (epoch != s.epoch || since > s.top)
    return std::nullopt;
  if (since == s.top)
    return std::vector<shared_frame>{};
  // Every message after `since` must still be here.
  if (s.entries.empty() || s.entries.front().seq > since + 1)
    return std::nullopt;
  std::vector<shared_frame> out;
  out.reserve(s.top - since);
  for (auto i = s.entries.begin() + static_cast<ptrdiff_t>(since + 1 - s.entries.front().seq);
       i != s.entries.end(); ++i)
    out.push_back(i->frame);
  return out;
}

void memory_history::sweep(int64_t now_ms,
                           const std::function<bool(const std::string&)>& keep) {
  for (auto i = streams_.begin(); i != streams_.end();) {
    auto& s = *i->second;
    expire(s, now_ms);
    // Nothing left to resume from and nobody here: forget the stream (its
    // next opening is a new epoch).
    if (s.entries.empty() && now_ms - s.last_append_ms > limits_.ttl_ms
        && !keep(i->first)) {
      i = streams_.erase(i);
      --stats_.streams;
    } else {
      ++i;
    }
  }
}

history_stats memory_history::stats() const {
  return stats_;
}

} // namespace kullsync::server

#include "stream_follower.hpp"

#include <algorithm>

namespace kullsync::server {

void stream_follower::follow(bool fresh, uint64_t generation) {
  live_ = false;
  filling_ = false;
  generation_ = generation;
  if (fresh)
    ahead_.clear();
}

void stream_follower::reset(effects& fx, const char* why) {
  fx.reset = why;
  fx.apply.clear();
  fx.read.reset();
  for (auto& a : acks_)
    dropped_.push_back(a.ticket);
  acks_.clear();
}

stream_follower::effects stream_follower::on_head(uint64_t generation, const stream_head& h,
                                                  bool fresh, bool* replaced) {
  effects fx;
  *replaced = false;
  if (generation != generation_)
    return fx;
  live_ = true;
  bool replace = fresh || h.epoch != epoch_;
  *replaced = replace;
  if (replace) {
    epoch_ = h.epoch;
    seq_ = h.top;
    for (auto i = ahead_.begin(); i != ahead_.end();)
      i = i->first <= seq_ || i->second->epoch() != epoch_ ? ahead_.erase(i) : std::next(i);
  }
  if (!replace && h.top > seq_) {
    filling_ = true;
    fx.read = effects::range{generation_, seq_, h.top};
    return fx;
  }
  drain(fx);
  return fx;
}

stream_follower::effects stream_follower::on_message(const message_ptr& m) {
  effects fx;
  if (!live_ || filling_) {
    ahead_.emplace(m->seq, m);
    return fx;
  }
  if (m->epoch() != epoch_) {
    reset(fx, "the stream's epoch changed");
    return fx;
  }
  if (m->seq <= seq_)
    return fx; // delivered twice
  if (m->seq == seq_ + 1 && ahead_.empty()) {
    apply(m, fx); // the usual case: next in line, nothing waiting
    return fx;
  }
  ahead_.emplace(m->seq, m);
  drain(fx);
  return fx;
}

void stream_follower::drain(effects& fx) {
  while (live_ && !filling_ && !ahead_.empty()) {
    auto i = ahead_.begin();
    if (i->second->epoch() != epoch_)
      return reset(fx, "the stream's epoch changed");
    if (i->first <= seq_) {
      ahead_.erase(i);
    } else if (i->first > seq_ + 1) {
      filling_ = true;
      fx.read = effects::range{generation_, seq_, i->first - 1};
      return;
    } else {
      auto m = std::move(i->second);
      ahead_.erase(i);
      apply(m, fx);
    }
  }
}

void stream_follower::apply(const message_ptr& m, effects& fx) {
  seq_ = m->seq;
  fx.apply.push_back(m);
  // Those of another epoch never come due: the devices resend them.
  for (auto i = acks_.begin(); i != acks_.end();) {
    if (i->epoch != epoch_) {
      dropped_.push_back(i->ticket);
      i = acks_.erase(i);
    } else if (i->seq <= seq_) {
      fx.acks.push_back(i->ticket);
      i = acks_.erase(i);
    } else {
      ++i;
    }
  }
}

stream_follower::effects stream_follower::on_range(uint64_t generation,
                                                   const stream_range& r) {
  effects fx;
  if (generation != generation_)
    return fx;
  filling_ = false;
  if (!r.complete || r.epoch != epoch_) {
    reset(fx, "the stream no longer holds what this node missed");
    return fx;
  }
  for (auto& m : r.messages) {
    if (m->seq <= seq_)
      continue;
    if (m->seq != seq_ + 1) {
      reset(fx, "the broker's read has a gap");
      return fx;
    }
    apply(m, fx);
  }
  drain(fx);
  return fx;
}

void stream_follower::on_read_failed(uint64_t generation) {
  if (generation == generation_)
    filling_ = false;
}

bool stream_follower::check_due(int64_t now, int64_t period_ms) {
  if (!live_ || filling_ || now - checked_ms_ < period_ms)
    return false;
  checked_ms_ = now;
  return true;
}

stream_follower::effects stream_follower::on_check(uint64_t generation,
                                                   const stream_head& h) {
  effects fx;
  if (generation != generation_ || !live_)
    return fx;
  if (h.epoch != epoch_) {
    reset(fx, "the stream's epoch changed");
  } else if (h.top > seq_ && !filling_) {
    filling_ = true;
    fx.read = effects::range{generation_, seq_, h.top};
  }
  return fx;
}

stream_follower::effects stream_follower::on_receipt(const publish_receipt& r,
                                                     uint64_t ticket) {
  effects fx;
  if (live_ && r.epoch != epoch_) {
    dropped_.push_back(ticket);
    reset(fx, "the broker numbers in another epoch");
  } else if (live_ && seq_ >= r.seq) {
    fx.acks.push_back(ticket);
  } else {
    acks_.push_back({r.seq, r.epoch, ticket});
  }
  return fx;
}

std::vector<uint64_t> stream_follower::take_dropped_acks() {
  return std::exchange(dropped_, {});
}

} // namespace kullsync::server

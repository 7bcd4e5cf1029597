#include "stream_follower.hpp"

#include <algorithm>

namespace kullsync::server {

stream_follower::waiting& stream_follower::w() {
  if (!w_)
    w_ = std::make_unique<waiting>();
  return *w_;
}

void stream_follower::trim() {
  if (w_ && w_->ahead.empty() && w_->acks.empty() && w_->dropped.empty())
    w_.reset();
}

void stream_follower::follow(bool fresh, uint64_t generation) {
  live_ = false;
  filling_ = false;
  generation_ = generation;
  if (fresh && w_)
    w_->ahead.clear();
  trim();
}

void stream_follower::reset(effects& fx, const char* why) {
  fx.reset = why;
  fx.apply.clear();
  fx.read.reset();
  if (!w_)
    return;
  for (auto& a : w_->acks)
    w_->dropped.push_back(a.ticket);
  w_->acks.clear();
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
    if (epoch_ != h.epoch)
      replaced_epoch_ = std::move(epoch_);
    epoch_ = h.epoch;
    seq_ = h.top;
    if (w_)
      for (auto i = w_->ahead.begin(); i != w_->ahead.end();)
        i = i->first <= seq_ || i->second->epoch() != epoch_ ? w_->ahead.erase(i)
                                                             : std::next(i);
    // The head may cover ACKs that waited for the follow (due now) or name
    // another epoch (never due): none waits for a message to come.
    settle_acks(fx);
  }
  if (!replace && h.top > seq_) {
    read_back(fx, seq_, h.top);
    return fx;
  }
  drain(fx);
  return fx;
}

stream_follower::effects stream_follower::on_message(const message_ptr& m) {
  effects fx;
  if (!live_ || filling_) {
    w().ahead.emplace(m->seq, m);
    return fx;
  }
  if (m->epoch() != epoch_) {
    if (!of_replaced_epoch(m->epoch()))
      reset(fx, "the stream's epoch changed");
    return fx; // else: late history
  }
  if (m->seq <= seq_)
    return fx; // delivered twice
  if (m->seq == seq_ + 1 && nothing_ahead()) {
    apply(m, fx); // the usual case: next in line, nothing waiting
    return fx;
  }
  w().ahead.emplace(m->seq, m);
  drain(fx);
  return fx;
}

void stream_follower::drain(effects& fx) {
  while (live_ && !filling_ && !nothing_ahead()) {
    auto& ahead = w_->ahead;
    auto i = ahead.begin();
    if (of_replaced_epoch(i->second->epoch())) {
      ahead.erase(i); // late history
      continue;
    }
    if (i->second->epoch() != epoch_)
      return reset(fx, "the stream's epoch changed");
    if (i->first <= seq_) {
      ahead.erase(i);
    } else if (i->first > seq_ + 1) {
      return read_back(fx, seq_, i->first - 1);
    } else {
      auto m = std::move(i->second);
      ahead.erase(i);
      apply(m, fx);
    }
  }
}

void stream_follower::read_back(effects& fx, uint64_t since, uint64_t upto) {
  filling_ = true;
  fill_upto_ = upto;
  fx.read = effects::range{generation_, since, upto};
}

void stream_follower::apply(const message_ptr& m, effects& fx) {
  seq_ = m->seq;
  fx.apply.push_back(m);
  settle_acks(fx);
}

void stream_follower::settle_acks(effects& fx) {
  if (!w_)
    return;
  // Those of another epoch never come due: the devices resend them.
  auto& acks = w_->acks;
  for (auto i = acks.begin(); i != acks.end();) {
    if (i->epoch != epoch_) {
      w_->dropped.push_back(i->ticket);
      i = acks.erase(i);
    } else if (i->seq <= seq_) {
      fx.acks.push_back(i->ticket);
      i = acks.erase(i);
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
  if (seq_ < fill_upto_) {
    // Whole, yet short of what a head or a delivered message said the
    // stream holds: no publish makes that (a message is in the stream
    // before it is on the channel), so what claimed the position is not the
    // stream's (a record someone else wrote). Asking again would get the
    // same answer for ever: the stream is followed afresh.
    reset(fx, "a delivered message claims a position the stream does not hold");
    return fx;
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
    read_back(fx, seq_, h.top);
  }
  return fx;
}

stream_follower::effects stream_follower::on_receipt(const publish_receipt& r,
                                                     uint64_t ticket) {
  effects fx;
  if (live_ && r.epoch != epoch_) {
    // Numbered in the epoch the head replaced: its socket was closed then
    // (the device resends it); in any other, the stream changed again.
    w().dropped.push_back(ticket);
    if (!of_replaced_epoch(r.epoch))
      reset(fx, "the broker numbers in another epoch");
  } else if (live_ && seq_ >= r.seq) {
    fx.acks.push_back(ticket);
  } else {
    w().acks.push_back({r.seq, r.epoch, ticket});
  }
  return fx;
}

std::vector<uint64_t> stream_follower::take_dropped_acks() {
  if (!w_)
    return {};
  auto out = std::exchange(w_->dropped, {});
  trim();
  return out;
}

std::vector<uint64_t> stream_follower::take_all_acks() {
  if (!w_)
    return {};
  auto out = std::exchange(w_->dropped, {});
  for (auto& a : w_->acks)
    out.push_back(a.ticket);
  w_->acks.clear();
  trim();
  return out;
}

} // namespace kullsync::server

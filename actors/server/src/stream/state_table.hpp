#pragma once

// Private to the server: what a user's state is made of (the last credit
// update, the shoots in progress or just finished), kept as the frames that
// set each field, with the rule for when a message replaces a field (see
// state_update in stream.hpp). The stream core judges with it; a node that
// follows a stream keeps a copy with mirror(), which takes the core's
// verdicts without judging again. The Redis publish script mirrors every
// step here (redis_scripts.hpp); one table of cases checks both.
//
// Bounded: adding a field first drops the fields whose linger ended, then
// the shoots not updated for `idle_ms`, then, past `max_shoots`, the shoots
// updated least recently (by `updated`, then by name). The credits are
// never dropped. All of that happens only when a field is added, never on
// an update of one that exists. No CAF.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kullsync/server/stream.hpp"

namespace kullsync::server {

class state_table {
public:
  struct value {
    shared_frame frame; // shared with the message that set it
    uint64_t seq = 0;   // `frame` is numbered with it (v2 text); 0: v1 text
    bool terminal = false;
    int64_t rank = -1;
    int64_t at = 0;
    int64_t until = 0;   // 0: shown until replaced
    int64_t updated = 0; // when it was written (the writer's clock)
  };

  explicit state_table(size_t max_shoots = 0, int64_t idle_ms = 0)
    : max_shoots_(max_shoots), idle_ms_(idle_ms) {}
  state_table(const state_table& x)
    : max_shoots_(x.max_shoots_),
      idle_ms_(x.idle_ms_),
      t_(x.t_ ? std::make_unique<tables>(*x.t_) : nullptr),
      bytes_(x.bytes_),
      evicted_(x.evicted_) {}
  state_table(state_table&&) = default;
  state_table& operator=(state_table x) {
    std::swap(max_shoots_, x.max_shoots_);
    std::swap(idle_ms_, x.idle_ms_);
    std::swap(t_, x.t_);
    std::swap(bytes_, x.bytes_);
    std::swap(evicted_, x.evicted_);
    return *this;
  }

  /// Whether a field counts toward the cap and may go idle (a shoot's).
  static bool is_shoot(const std::string& field) { return field.rfind("shoot:", 0) == 0; }

  /// Judges `u` (its message's `frame`, numbered `seq`) against the field's
  /// value at `now`; stores it when it replaces. Returns what changed (an
  /// empty field: nothing, the message was stale). The frame is shared, not
  /// copied; its v1 text is made only when the state is read.
  state_change put(const state_update& u, const shared_frame& frame, uint64_t seq,
                   int64_t now);

  /// A follower's copy: stores what the stream kept (`c` from a message,
  /// or a head's value), evicting as the stream did.
  void mirror(const state_change& c, const shared_frame& frame, uint64_t seq);
  void mirror(const state_frame& f);

  /// The values shown at `now` (a finished shoot until its linger ends),
  /// by field name, with their v1 text.
  std::vector<state_frame> shown(int64_t now) const;
  /// Every value, lingered-out ones included (what the stream holds).
  std::vector<state_frame> all() const;

  void clear();
  bool empty() const { return !t_ || t_->values.empty(); }
  size_t size() const { return t_ ? t_->values.size() : 0; }
  /// An estimate of the memory it holds.
  size_t bytes() const { return bytes_; }
  /// Shoots dropped by the cap or as idle, since construction.
  uint64_t evicted() const { return evicted_; }

private:
  /// Makes room for a new field at `now` (`shoot`: a shoot's).
  void make_room(int64_t now, bool shoot);
  using index = std::set<std::pair<int64_t, std::string>>;
  /// The values and their indexes, made with the first value: most users
  /// connected now have no state, and an empty table should cost nothing.
  struct tables {
    std::map<std::string, value> values;
    index by_update; // (updated, field), shoots only
    index by_until;  // (until, field), until != 0
  };
  tables& own();

  void store(const std::string& field, value v);
  void erase(std::map<std::string, value>::iterator i);

  size_t max_shoots_;
  int64_t idle_ms_;
  std::unique_ptr<tables> t_;
  size_t bytes_ = 0;
  uint64_t evicted_ = 0;
};

} // namespace kullsync::server

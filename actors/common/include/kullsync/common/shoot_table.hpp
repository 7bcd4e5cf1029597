#pragma once

/// A user's active shoots and the rule for when one leaves: a completed or
/// failed shoot stays `linger` after its last message (the UI shows how it
/// ended), unless a newer message about it came meanwhile. The client's
/// coordinator and the server's hub keep one each, so a device and the
/// server remember the same shoots.
///
/// A stale event never moves a shoot backwards: while a shoot runs, an
/// update with a lower processedCount is ignored; a completed or failed
/// shoot is revived (a retry starts a new run) only by a running-state event
/// that is not older than the one that ended it (envelope timestamps; an
/// unknown time, 0, counts as not older). Both ends apply the same rule to
/// the same stream, so they still remember the same shoots.
/// No CAF: the owner schedules the expiry it is handed and gives it back
/// when due.
///
/// Bounded: with a capacity, a new shoot past it evicts the shoot updated
/// least recently (counted in `evicted()`); `drop_idle` removes shoots
/// whose last event is older than a given time (running shoots that stopped
/// reporting would otherwise stay for ever).

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "kullsync/messages/types.hpp"

namespace kullsync {

class shoot_table {
public:
  using map_type = std::map<std::string, msg::shoot_progress>;

  /// Stores the shoot's newest state, unless `p` is stale (see above). For a
  /// completed or failed shoot, returns the version to hand back to expire()
  /// once the linger is over.
  /// `at`: the event's time (epoch ms; 0 unknown).
  std::optional<uint64_t> put(const msg::shoot_progress& p, int64_t at = 0);

  /// Removes the shoot if `version` is still its latest (nothing about it
  /// came since); true if it did.
  bool expire(const std::string& shoot_id, uint64_t version);

  /// Whether `p` (at `at`) would move a shoot that is at `now` (since
  /// `now_at`) backwards.
  static bool is_stale(const msg::shoot_progress& now, int64_t now_at,
                       const msg::shoot_progress& p, int64_t at);

  void erase(const std::string& shoot_id);
  void clear();

  /// At most `n` shoots (0: no bound).
  void set_capacity(size_t n) { capacity_ = n; }
  /// Removes every shoot whose last event is before `before` (epoch ms;
  /// events of unknown time count as old); returns how many went.
  size_t drop_idle(int64_t before);
  /// Shoots evicted by the capacity or drop_idle, since construction.
  uint64_t evicted() const { return evicted_; }

  const map_type& shoots() const { return shoots_; }
  bool empty() const { return shoots_.empty(); }
  size_t size() const { return shoots_.size(); }

private:
  map_type shoots_;
  struct last_event {
    uint64_t version = 0;
    int64_t at = 0;
  };
  void forget(std::map<std::string, last_event>::iterator i);

  std::map<std::string, last_event> last_; // of each shoot
  std::map<uint64_t, std::string> by_version_; // least recently updated first
  uint64_t next_version_ = 0;
  size_t capacity_ = 0;
  uint64_t evicted_ = 0;
};

} // namespace kullsync

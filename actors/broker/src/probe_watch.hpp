#pragma once

// Private to the broker: when an instance's links count as stopped. Every
// probe interval the node publishes a probe on the command link and waits
// to see it on the subscriber link. A probe that is late does not by itself
// mean a link stopped: after a burst (a node taking over thousands of
// devices at once) the command link answers a backlog of reads and the
// subscriber delivers a backlog of messages, seconds long, and cutting the
// links then fails everything waiting on them and makes the node resubscribe
// every user, which is more of the same load. So a probe past its patience
// cuts the links only when the link it waits on has read nothing for the
// patience: the command link until Redis answered the probe's PUBLISH, then
// the subscriber link. A stuck Redis (SIGSTOP, a long fork) or a dead path
// sends nothing, and is cut at the third tick. Nothing is judged at a tick
// that comes late (this node was short of CPU, and what it did not read yet
// waits in its sockets), and a link that reads but never brings the probe
// back is cut in the end. Plain logic: no I/O, and each call says what time
// it is.

#include <algorithm>
#include <cstdint>

namespace kullsync::broker {

/// How long a probe may take before its links are judged: three intervals,
/// judged at the third tick (ticks drift by a few ms).
inline int64_t probe_patience(int64_t interval) {
  return 3 * interval - interval / 4;
}

/// Probe intervals after which a probe that did not come back cuts the
/// links even though they still read.
constexpr int64_t probe_behind_limit = 30;

/// The probe out, if any.
class probe_watch {
public:
  void send(int64_t now) {
    sent_ms_ = now;
    answered_ms_ = 0;
  }
  /// Redis answered this probe's PUBLISH: the subscriber owes it now.
  void answer(int64_t now) { answered_ms_ = now; }
  /// It came back on the subscriber link.
  void back(int64_t now) { seen_ms_ = now; }
  /// No probe out (a link went, or a new subscriber): the next tick sends one.
  void reset() { *this = probe_watch{}; }

  bool out() const { return sent_ms_ > seen_ms_; }
  bool answered() const { return answered_ms_ != 0; }
  int64_t sent_ms() const { return sent_ms_; }
  int64_t answered_ms() const { return answered_ms_; }

private:
  int64_t sent_ms_ = 0, answered_ms_ = 0, seen_ms_ = 0;
};

enum class probe_verdict {
  send,    // no probe out: send the next one
  waiting, // out, within the patience (or judged at the next tick)
  behind,  // out past the patience, but the link it waits on still reads
  stopped, // out, and that link read nothing for the patience: cut both links
};

/// When each link last read something.
struct link_reads {
  int64_t cmd_ms = 0, sub_ms = 0;
};

/// At a tick `now`, the one before at `previous_tick` (0: none), probes
/// every `interval` ms.
inline probe_verdict judge(const probe_watch& p, int64_t now, int64_t previous_tick,
                           link_reads reads, int64_t interval) {
  if (!p.out())
    return probe_verdict::send;
  auto patience = probe_patience(interval);
  auto age = now - p.sent_ms();
  if (age < patience)
    return probe_verdict::waiting;
  if (age >= probe_behind_limit * interval)
    return probe_verdict::stopped;
  if (previous_tick != 0 && now - previous_tick > 2 * interval)
    return probe_verdict::waiting; // this node's own stall
  auto owed_since = p.answered() ? p.answered_ms() : p.sent_ms();
  auto heard = std::max(owed_since, p.answered() ? reads.sub_ms : reads.cmd_ms);
  return now - heard >= patience ? probe_verdict::stopped : probe_verdict::behind;
}

} // namespace kullsync::broker

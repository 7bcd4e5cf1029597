#pragma once

// Private to the broker: when an instance's links count as stopped. Every
// probe interval the node publishes a probe on the command link and waits
// to see it on the subscriber link. A probe that is late does not by itself
// mean a link stopped: after a burst (a node taking over thousands of
// devices at once) the command link answers a backlog of reads and the
// subscriber delivers a backlog of messages, seconds long, and cutting the
// links then fails everything waiting on them and makes the node resubscribe
// every user, which is more of the same load. So a late probe cuts the
// links only when the link it waits on has been silent for the patience:
// the command link until Redis answered the probe's PUBLISH, then the
// subscriber link. A stuck Redis (SIGSTOP, a long fork) or a dead path
// sends nothing, and is cut at the third tick. Nor is anything judged at a
// tick that comes late: this node was short of CPU, and what it did not
// read yet waits in its sockets. The rule is plain logic (no I/O; each call
// says what time it is); the broker's clock is here too.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace kullsync::broker {

/// The broker's clock for its probe and its links' patience (ms).
inline int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

struct probe_watch {
  int64_t sent_ms = 0;     // the probe out (0: none yet)
  int64_t answered_ms = 0; // Redis answered its PUBLISH: the subscriber owes it
  int64_t seen_ms = 0;     // it came back on the subscriber link

  bool out() const { return sent_ms > seen_ms; }
};

enum class probe_verdict {
  send,    // no probe out: send the next one
  waiting, // out, within the patience
  behind,  // out past the patience, but the link it waits on still reads
  stopped, // out, and that link silent for the patience: cut both links
};

/// How long a probe may take before its link is judged: three intervals,
/// judged at the third tick (ticks drift by a few ms).
inline int64_t probe_patience(int64_t interval) {
  return 3 * interval - interval / 4;
}

/// When each link last read something.
struct link_reads {
  int64_t cmd_ms = 0, sub_ms = 0;
};

/// At a tick `now`, the one before at `previous_tick` (0: none).
/// `interval`: the probe interval. A link that reads, but never brings the
/// probe back, is cut at `behind_limit` intervals.
inline probe_verdict judge(const probe_watch& p, int64_t now, int64_t previous_tick,
                           link_reads reads, int64_t interval, int64_t behind_limit = 30) {
  if (!p.out())
    return probe_verdict::send;
  auto patience = probe_patience(interval);
  auto age = now - p.sent_ms;
  if (age < patience)
    return probe_verdict::waiting;
  if (age >= behind_limit * interval)
    return probe_verdict::stopped;
  if (previous_tick != 0 && now - previous_tick > 2 * interval)
    return probe_verdict::waiting; // this node's own stall
  bool answered = p.answered_ms >= p.sent_ms;
  auto owed_since = answered ? p.answered_ms : p.sent_ms;
  auto heard = std::max(owed_since, answered ? reads.sub_ms : reads.cmd_ms);
  return now - heard >= patience ? probe_verdict::stopped : probe_verdict::behind;
}

} // namespace kullsync::broker

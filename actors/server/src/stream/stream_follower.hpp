#pragma once

// Private to the server: where a node stands in one user's stream, the
// server's counterpart of the client's stream_link. The hub feeds it what
// the broker answers and delivers; it says what to do: which messages to
// apply (strictly in order, each once), what to read back (a gap), when
// the stream cannot be kept continuous (another epoch, a gap the stream no
// longer holds: reset), and which ACKs came due (a client message is ACKed
// once its position was sent to this node's sockets). No CAF, no I/O.
//
// Every follow has a generation; answers to an older one are ignored.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "kullsync/server/stream.hpp"

namespace kullsync::server {

class stream_follower {
public:
  /// What to do after an event, in this order: `reset` (then follow
  /// afresh), else apply `apply`, then send the ACKs `acks` (tickets the
  /// hub handed in), then ask for `read`.
  struct effects {
    boost::container::small_vector<message_ptr, 2> apply;
    struct range {
      uint64_t generation, since, upto;
    };
    std::optional<range> read;
    const char* reset = nullptr; // why the stream cannot go on
    boost::container::small_vector<uint64_t, 2> acks;
  };

  /// Starts a follow (or a new one: `fresh` forgets what waits) numbered
  /// `generation` (from the hub's counter, so that a user followed anew
  /// never takes an answer meant for an older follow); the broker's answers
  /// come back with it.
  void follow(bool fresh, uint64_t generation);

  /// The head of follow `generation` came. `replaced` tells whether it
  /// replaces what the node had (a fresh follow, or another epoch: then the
  /// state is the head's and, after a resync, the v2 sockets resume).
  effects on_head(uint64_t generation, const stream_head& h, bool fresh, bool* replaced);

  /// A message the broker delivered (in the stream's order, maybe with
  /// losses: the gap is read back). One of the epoch the last head replaced
  /// is late history and dropped; of any other epoch, a reset.
  effects on_message(const message_ptr& m);

  /// A read of follow `generation` answered or failed (the next message or
  /// position check reads again).
  effects on_range(uint64_t generation, const stream_range& r);
  void on_read_failed(uint64_t generation);

  /// A position check's head: a lost last message shows only there.
  effects on_check(uint64_t generation, const stream_head& h);
  /// Whether a position check is due at `now` (and notes that one goes).
  bool check_due(int64_t now, int64_t period_ms);

  /// A client message of this node was numbered (`r`); `ticket` is the
  /// hub's for its ACK, due once the position was applied here. One
  /// numbered in another epoch than this node serves never comes due (its
  /// socket was closed when the epoch changed), and unless that epoch is
  /// the one the last head replaced, the stream resets.
  effects on_receipt(const publish_receipt& r, uint64_t ticket);

  /// ACK tickets that never come due (the stream was reset: the devices
  /// resend, the broker answers the ids); the hub forgets them.
  std::vector<uint64_t> take_dropped_acks();
  /// Every ACK ticket it holds, due or not, for a follower about to be
  /// dropped (its user's last socket on the node left: no sender to answer).
  std::vector<uint64_t> take_all_acks();

  bool live() const { return live_; }
  bool filling() const { return filling_; }
  uint64_t generation() const { return generation_; }
  const std::string& epoch() const { return epoch_; }
  uint64_t seq() const { return seq_; }

private:
  void drain(effects& fx);
  void apply(const message_ptr& m, effects& fx);
  /// Asks for (since, upto]: until it is answered, nothing else is read.
  void read_back(effects& fx, uint64_t since, uint64_t upto);
  void settle_acks(effects& fx);
  void reset(effects& fx, const char* why);

  bool live_ = false;       // the head arrived (else: a follow is out)
  bool filling_ = false;    // a read is out
  uint64_t fill_upto_ = 0;  // up to where it asks
  uint64_t generation_ = 0;
  std::string epoch_;
  // The epoch the last head replaced: its messages still on their way (a
  // subscriber link slower than the head's) are history, not a change.
  std::string replaced_epoch_;
  bool of_replaced_epoch(const std::string& epoch) const {
    return !replaced_epoch_.empty() && epoch == replaced_epoch_;
  }
  uint64_t seq_ = 0; // the last position applied
  int64_t checked_ms_ = 0;
  struct waiting_ack {
    uint64_t seq;
    std::string epoch;
    uint64_t ticket;
  };
  /// What waits: messages that came early, ACKs not yet due, ACKs that
  /// never will be. Made when something waits, gone when nothing does: most
  /// followed users have nothing waiting most of the time.
  struct waiting {
    std::map<uint64_t, message_ptr> ahead;
    std::vector<waiting_ack> acks;
    std::vector<uint64_t> dropped;
  };
  waiting& w();
  bool nothing_ahead() const { return !w_ || w_->ahead.empty(); }
  void trim();
  std::unique_ptr<waiting> w_;
};

} // namespace kullsync::server

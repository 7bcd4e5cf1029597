#pragma once

// Private to the server: the one implementation of a user's stream in C++.
// Opening a stream and its epoch; a publish (dedup per key, numbering, the
// state rule, presence, storing); a read (since, upto], all or nothing; the
// head. A node alone runs it in process (local_broker.hpp); the simulation's
// broker runs it with faults around it; the cluster's Redis scripts are the
// only other implementation, checked against this one by one table of cases
// (tests/unit/stream_cases.hpp). Plain C++: no CAF, no I/O, no clock of its
// own (every call says what time it is). Not thread-safe: one owner.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include "kullsync/server/stream.hpp"
#include "ring.hpp"
#include "state_table.hpp"

namespace kullsync::server {

struct stream_limits {
  size_t history_size = 1000;       // messages kept per user (--history-size)
  int64_t history_ttl_ms = 600'000; // how long one is kept (--history-ttl)
  size_t history_bytes = 256u << 20; // the messages of all users together:
                                     // past it the oldest go first
  int64_t dedup_ttl_ms = 600'000;   // how long a dedup key answers
  size_t dedup_per_user = 4000;     // the oldest key goes past it
  size_t max_shoots = 1000;         // shoots per user (the state's cap)
  int64_t field_idle_ms = 3'600'000; // a shoot nobody updated goes (when
                                     // another is added)
  int64_t user_idle_ms = 86'400'000; // a user nobody writes to or follows
  size_t state_bytes = 256u << 20;   // the state of all users together: past
                                     // it the users idle longest go first
};

struct stream_stats {
  uint64_t streams = 0;
  uint64_t entries = 0;
  uint64_t history_bytes = 0;
  uint64_t evicted = 0;  // messages dropped by size, age or memory
  uint64_t state_bytes = 0;
  uint64_t fields_evicted = 0;
  uint64_t users_forgotten = 0;
  uint64_t dedup_keys = 0;
};

class stream_core {
public:
  /// Epochs are `epoch_prefix` + "-" + a number: a restarted process must
  /// pass another prefix.
  stream_core(std::string epoch_prefix, stream_limits limits);
  ~stream_core();
  stream_core(const stream_core&) = delete;
  stream_core& operator=(const stream_core&) = delete;

  /// Takes a publish (see publish_request); `out` gets the message to fan
  /// out, unless the dedup key was seen (then nothing is published).
  publish_receipt publish(publish_request req, message_ptr* out);

  /// The messages (since, upto] of `user`'s stream of `epoch` (upto past
  /// the top: to the top), all or nothing.
  stream_range read(const std::string& user, const std::string& epoch, uint64_t since,
                    uint64_t upto, int64_t now);

  /// Where `user`'s stream stands; presence of nodes `alive` says are alive.
  stream_head head(const std::string& user, int64_t now,
                   const std::function<bool(const std::string& node)>& alive);

  /// Forgets what expired: messages past their age, dedup keys, streams of
  /// users idle for `user_idle_ms` that `keep` does not name (users with
  /// devices), and past the state bound the idle users first.
  void sweep(int64_t now, const std::function<bool(const std::string& user)>& keep);

  /// Every stream starts a new epoch at its next touch (its messages gone,
  /// its positions going on): what a Redis failover to a replica does.
  void new_run();

  /// One user's whole stream as it is now, to be put back later (a
  /// replica that missed the writes since: the simulation's failover).
  struct saved;
  std::shared_ptr<const saved> save(const std::string& user) const;
  void restore(const std::string& user, const std::shared_ptr<const saved>& s);

  stream_stats stats() const;

private:
  struct entry {
    int64_t at;
    message_ptr msg;
  };
  struct dedup_answer {
    uint64_t seq;
    std::string epoch;
    int64_t at;
  };
  struct stream {
    key_ptr key; // user and epoch, shared by the stream's messages
    uint64_t run = 0;
    uint64_t top = 0;
    int64_t last_write = 0;
    ring<entry> entries; // consecutive, ending at `top`
    state_table state;
    /// Dedup answers, made with the first key (most users connected now
    /// never send one).
    struct dedup_keys {
      std::unordered_map<std::string, dedup_answer> answers;
      ring<std::string> order; // oldest first
    };
    std::unique_ptr<dedup_keys> dedup;
    /// The user's devices on each node (few: a vector, no node each); nodes
    /// by their index in `nodes_`.
    struct present_device {
      uint32_t node;
      int protocol;
      int64_t connected_at;
      std::string device;
    };
    std::vector<present_device> presence;
    explicit stream(const stream_limits& l) : state(l.max_shoots, l.field_idle_ms) {}
    stream(const stream& x)
      : key(x.key), run(x.run), top(x.top), last_write(x.last_write), entries(x.entries),
        state(x.state), dedup(x.dedup ? std::make_unique<dedup_keys>(*x.dedup) : nullptr),
        presence(x.presence) {}
  };
  /// Where a message went, in append order, for evicting the oldest (the
  /// stream may be gone by then).
  struct appended {
    std::weak_ptr<stream> s;
    uint64_t seq;
  };

  const std::shared_ptr<stream>& open(const std::string& user, int64_t now);
  void drop_front(stream& s);
  void expire(stream& s, int64_t now);
  /// A user forgotten (counted), or a stream replaced (erase only).
  void forget(std::unordered_map<std::string, std::shared_ptr<stream>>::iterator i);
  void erase(std::unordered_map<std::string, std::shared_ptr<stream>>::iterator i);
  void enforce_history_bytes();
  void enforce_state_bytes(const std::function<bool(const std::string&)>& keep);
  size_t state_bytes() const;

  /// A node's index in `nodes_` (presence names few nodes, many times).
  uint32_t node_index(const std::string& node);

  std::string prefix_;
  std::vector<std::string> nodes_;
  stream_limits limits_;
  uint64_t run_ = 1;
  uint64_t epochs_ = 0;
  std::unordered_map<std::string, std::shared_ptr<stream>> streams_;
  std::deque<appended> order_;
  stream_stats stats_;
};

} // namespace kullsync::server

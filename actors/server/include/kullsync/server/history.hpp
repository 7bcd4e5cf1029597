#pragma once

/// A user's stream (v2): every message that changes what the UI shows gets
/// the next position (`seq`) and is kept for a while, so that a device that
/// was away can be sent exactly what it missed. The history store numbers
/// and stores in one step: nobody can see a position that is not stored.
///
/// Positions are comparable only within an epoch. An epoch is opaque and
/// changes whenever a stream's history was lost: this store makes one per
/// stream from its node's epoch, so a restarted server (new node epoch) or a
/// stream it forgot (no device for longer than the history's lifetime)
/// starts a new one and resuming devices resync with a snapshot.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kullsync/transports/transport.hpp"

namespace kullsync::server {

struct history_limits {
  size_t size = 1000;          // messages kept per user (--history-size)
  int64_t ttl_ms = 600'000;    // how long one is kept (--history-ttl)
  size_t memory_bytes = 256u << 20; // all users of one store together
  /// A resume that would replay more is answered with a SNAPSHOT: one
  /// socket's queue holds 4096 frames (beast_server_options), and a replay
  /// beyond it would cut the socket as a slow consumer every time.
  size_t max_replay = 2000; // --max-replay
};

struct history_stats {
  uint64_t streams = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t evicted = 0; // by size, age or memory: positions now unrecoverable
};

/// The interface the hub numbers and stores through (in memory here; a
/// broker's store later). Not thread-safe: one hub shard owns one.
class history_store {
public:
  virtual ~history_store() = default;

  /// The user's epoch and top position (0: nothing numbered yet). Opens the
  /// stream if there is none.
  virtual const std::string& epoch(const std::string& user, int64_t now_ms) = 0;
  virtual uint64_t top(const std::string& user, int64_t now_ms) = 0;

  /// Numbers the next message of `user`'s stream and stores the frame
  /// `frame_for(seq)` builds for it; returns the frame.
  virtual shared_frame append(const std::string& user, int64_t now_ms,
                              const std::function<shared_frame(uint64_t)>& frame_for)
    = 0;

  /// Every stored frame after `since` in `user`'s stream of `epoch`, oldest
  /// first, if the history still holds all of them; nothing otherwise (other
  /// epoch, `since` evicted or ahead of the top). All or nothing.
  virtual std::optional<std::vector<shared_frame>>
  read_after(const std::string& user, const std::string& epoch, uint64_t since,
             int64_t now_ms)
    = 0;

  /// Drops streams that have nothing to resume any more (all expired) and
  /// entries past their age; `keep(user)` is true for users with devices.
  virtual void sweep(int64_t now_ms, const std::function<bool(const std::string&)>& keep)
    = 0;

  virtual history_stats stats() const = 0;
};

/// The in-memory store: per user a ring of the last `size` frames, each
/// dropped after `ttl_ms`; past `memory_bytes` in all, the oldest frames of
/// any user go first.
class memory_history final : public history_store {
public:
  memory_history(std::string node_epoch, history_limits limits);

  const std::string& epoch(const std::string& user, int64_t now_ms) override;
  uint64_t top(const std::string& user, int64_t now_ms) override;
  shared_frame append(const std::string& user, int64_t now_ms,
                      const std::function<shared_frame(uint64_t)>& frame_for) override;
  std::optional<std::vector<shared_frame>>
  read_after(const std::string& user, const std::string& epoch, uint64_t since,
             int64_t now_ms) override;
  void sweep(int64_t now_ms, const std::function<bool(const std::string&)>& keep) override;
  history_stats stats() const override;

private:
  struct entry {
    uint64_t seq;
    int64_t at_ms;
    shared_frame frame;
  };
  struct stream {
    std::string epoch;
    uint64_t top = 0;
    int64_t last_append_ms = 0;
    std::deque<entry> entries; // consecutive, ending at `top`
  };
  /// Where an entry went, in append order, for evicting the oldest (the
  /// stream may be gone by then).
  struct appended {
    std::weak_ptr<stream> s;
    uint64_t seq;
  };

  /// The user's stream (opened if there is none), with its old entries
  /// expired.
  const std::shared_ptr<stream>& open(const std::string& user, int64_t now_ms);
  void drop_front(stream& s);
  void expire(stream& s, int64_t now_ms);

  std::string node_epoch_;
  history_limits limits_;
  uint64_t next_stream_ = 0;
  std::unordered_map<std::string, std::shared_ptr<stream>> streams_;
  std::deque<appended> order_;
  history_stats stats_;
};

} // namespace kullsync::server

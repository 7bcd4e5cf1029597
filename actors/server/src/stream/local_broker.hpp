#pragma once

// Private to the server: a node alone's broker. The stream core in process,
// with the users this node follows: a publish is numbered, stored and
// delivered to the follower before the call returns, so a node alone pays
// no message hop for the cluster's shape. No CAF, no I/O.

#include <functional>
#include <string>

#include "stream_core.hpp"

namespace kullsync::server {

class local_broker {
public:
  using deliver_fn = std::function<void(const message_ptr&)>;
  using follows_fn = std::function<bool(const std::string& user)>;

  /// `deliver` gets every message (the follower ignores users it does not
  /// follow); `follows` says which users it follows (they are never
  /// forgotten).
  local_broker(std::string epoch_prefix, stream_limits limits, deliver_fn deliver,
               follows_fn follows)
    : core_(std::move(epoch_prefix), limits),
      deliver_(std::move(deliver)),
      follows_(std::move(follows)) {}

  /// Delivers the message to the follower first (which ignores users it
  /// does not follow).
  publish_receipt publish(publish_request req) {
    message_ptr m;
    auto r = core_.publish(std::move(req), &m);
    if (m)
      deliver_(m);
    return r;
  }

  stream_head follow(const std::string& user, int64_t now) { return core_.head(user, now, {}); }

  stream_range read(const std::string& user, const std::string& epoch, uint64_t since,
                    uint64_t upto, int64_t now) {
    return core_.read(user, epoch, since, upto, now);
  }

  stream_head head(const std::string& user, int64_t now) {
    return core_.head(user, now, {});
  }

  /// Forgets what expired; users followed here are kept.
  void sweep(int64_t now) { core_.sweep(now, follows_); }

  stream_stats stats() const { return core_.stats(); }

private:
  stream_core core_;
  deliver_fn deliver_;
  follows_fn follows_;
};

} // namespace kullsync::server

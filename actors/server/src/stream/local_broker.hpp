#pragma once

// Private to the server: a node alone's broker. The stream core in process,
// with the users this node follows: a publish is numbered, stored and
// delivered to the follower before the call returns, so a node alone pays
// no message hop for the cluster's shape. No CAF, no I/O.

#include <functional>
#include <string>
#include <unordered_set>

#include "stream_core.hpp"

namespace kullsync::server {

class local_broker {
public:
  using deliver_fn = std::function<void(const message_ptr&)>;

  local_broker(std::string epoch_prefix, stream_limits limits, deliver_fn deliver)
    : core_(std::move(epoch_prefix), limits), deliver_(std::move(deliver)) {}

  /// Delivers the message to the follower (if the user is followed) first.
  publish_receipt publish(const publish_request& req) {
    message_ptr m;
    auto r = core_.publish(req, &m);
    if (m && followed_.count(req.user))
      deliver_(m);
    return r;
  }

  stream_head follow(const std::string& user, int64_t now) {
    followed_.insert(user);
    return core_.head(user, now, {});
  }

  void unfollow(const std::string& user) { followed_.erase(user); }

  stream_range read(const std::string& user, const std::string& epoch, uint64_t since,
                    uint64_t upto, int64_t now) {
    return core_.read(user, epoch, since, upto, now);
  }

  stream_head head(const std::string& user, int64_t now) {
    return core_.head(user, now, {});
  }

  /// Forgets what expired; users followed here are kept.
  void sweep(int64_t now) {
    core_.sweep(now, [this](const std::string& user) { return followed_.count(user) != 0; });
  }

  stream_stats stats() const { return core_.stats(); }

private:
  stream_core core_;
  deliver_fn deliver_;
  std::unordered_set<std::string> followed_;
};

} // namespace kullsync::server

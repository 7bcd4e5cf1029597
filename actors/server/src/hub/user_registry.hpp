#pragma once

// Private to the server: a hub shard's users and their sockets on this
// node, and which of their devices are connected, here or on other nodes.
// Presence is not in the stream: this node tells the broker which devices
// are here (reconciled: the broker's list is brought to what is here after
// every change, and again after a failure), and keeps what the other nodes
// said per (node, device), so a device that moved is on the new node before
// the old one says it left. No actor is touched here: the hub sends.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../stream/state_table.hpp"
#include "../stream/stream_follower.hpp"
#include "kullsync/messages/types.hpp"
#include "../hub_protocol.hpp"

namespace kullsync::server {

/// A user's few device ids, sorted: no allocation per element (a user has
/// one to a few devices, at most --max-sockets-per-user).
class device_set {
public:
  device_set() = default;
  device_set(std::initializer_list<std::string> xs) {
    for (auto& x : xs)
      insert(x);
  }
  bool count(const std::string& d) const {
    return std::binary_search(items_.begin(), items_.end(), d);
  }
  void insert(std::string d) {
    auto i = std::lower_bound(items_.begin(), items_.end(), d);
    if (i == items_.end() || *i != d)
      items_.insert(i, std::move(d));
  }
  void erase(const std::string& d) {
    auto i = std::lower_bound(items_.begin(), items_.end(), d);
    if (i != items_.end() && *i == d)
      items_.erase(i);
  }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  bool operator==(const device_set& x) const { return items_ == x.items_; }
  bool operator!=(const device_set& x) const { return items_ != x.items_; }

private:
  std::vector<std::string> items_;
};

struct device_socket {
  std::string device_id;
  session_actor session;
  link_actor socket;
  int64_t connected_at = 0;
  bool v2 = false;
  /// Waiting for its user's stream head (then started), or for a replay
  /// (frames for it are `held` until then).
  std::unique_ptr<join_request> start;
  bool holding = false;
  std::vector<shared_frame> held;
  bool closing = false; // told to close: nothing more goes to it
  /// v2: the position of the last numbered message sent or held for it
  /// (set where it starts: its WELCOME's, or its replay's end); each
  /// message must be the next (take_position).
  uint64_t position = 0;
};

/// What to do with numbered position `seq` for v2 socket `s`: send it (it
/// is the next: now the socket's position), skip it (the socket waits for
/// its start or is closing), or refuse it: a position the socket has
/// (`twice`: not sent again) or one past a gap (`gap`: the socket must
/// resume). The follower's order makes the refusals never happen; a device
/// trusts the rule, so each socket checks it all the same.
enum class position_verdict { send, skip, twice, gap };
position_verdict take_position(device_socket& s, uint64_t seq);

/// A user's stream as this node follows it: the position and what the
/// user's state is made of (for SNAPSHOT and /state), copied from the
/// stream without decoding a frame.
struct followed_stream {
  stream_follower follower;
  state_table state;
  followed_stream(size_t max_shoots, int64_t idle_ms) : state(max_shoots, idle_ms) {}
};

struct user_entry {
  std::vector<device_socket> sockets;
  std::unique_ptr<followed_stream> stream; // while the user has sockets here
  /// Devices on other nodes, by (node instance, device).
  std::map<std::pair<std::string, std::string>, int64_t> remote_devices;
  /// What the broker was told of this node's devices.
  struct announced_presence {
    device_set announced;
    int in_flight = 0;
    bool dirty = false; // an announcement failed: retried by the sweep
  } presence;
};

/// Whether another socket of `u` than `except` on this node belongs to
/// `device`: a device with several sockets (an app and its extension, a
/// reconnect that overtook the old socket's close) is connected until its
/// last one leaves.
bool device_here(const user_entry& u, const std::string& device,
                 const device_socket* except);
/// The same on any node (the other nodes as their presence says).
bool device_present(const user_entry& u, const std::string& device,
                    const device_socket* except);
/// The user's devices connected now, each once, here first.
std::vector<msg::device_connection> devices_of(const user_entry& u);

/// What the broker must be told to list this node's devices of `u` as they
/// are (devices here that are not going away): (device, connected?) pairs.
std::vector<std::pair<std::string, bool>> presence_changes(const user_entry& u);

/// Another node said `device` arrived (`on`) or left: tracked. True when
/// this node's sockets should hear of it (it arrived, or left for good).
bool track_remote(user_entry& u, const std::string& node, const std::string& device,
                  bool on, int64_t at);

/// The devices whose presence changed unseen (a presence message lost)
/// when the other nodes' list is replaced by `list` (from the broker; this
/// node's own entries, `me`, are skipped): who arrived, who left. A list
/// that is not `complete` (stream_head::devices_complete) adds devices and
/// removes none.
struct presence_diff {
  std::vector<std::pair<std::string, int64_t>> arrived;
  std::vector<std::string> left;
};
presence_diff replace_remote(user_entry& u, const std::vector<presence_entry>& list,
                             const std::string& me, bool complete = true);

} // namespace kullsync::server

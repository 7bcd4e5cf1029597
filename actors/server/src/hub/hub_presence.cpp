// A hub shard's presence: telling the broker which of a user's devices are
// here, and tracking those the other nodes have (user_registry.hpp). Kept
// right by reconciling: the broker's list of this node's devices is brought
// to what is here whenever either changes or an attempt failed, and the
// other nodes' devices are read again with every position check (a lost
// presence message heals there).
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"

namespace kullsync::server {

namespace {

/// When the device's first socket here connected, and what it speaks.
std::pair<int64_t, int> connection_of(const user_entry& u, const std::string& device,
                                      int64_t dflt) {
  for (auto& s : u.sockets)
    if (s.device_id == device)
      return {s.connected_at, s.v2 ? 2 : 1};
  return {dflt, 1};
}

/// Tells the broker that `device` is here (`on`) or left.
void announce_one(hub_ptr self, const std::string& user, user_entry& u,
                  const std::string& device, bool on) {
  auto& st = self->state;
  auto now = now_ms(self);
  auto [at, protocol] = on ? connection_of(u, device, now) : std::make_pair(now, 1);
  publish_request req;
  req.user = user;
  req.origin = st.cfg.cluster.instance;
  req.frame = device_frame(on ? msg::server_type::device_connected
                              : msg::server_type::device_disconnected,
                           user, device, at)
                .str();
  req.presence = presence_entry{st.cfg.cluster.instance, device, at, protocol};
  req.present = on;
  req.now = now;
  st.broker->publish(std::move(req), [self, user, device,
                                      on](caf::expected<publish_receipt> r) {
    auto i = self->state.users.find(user);
    if (i == self->state.users.end())
      return;
    auto& p = i->second.presence;
    --p.in_flight;
    if (!r) {
      ++self->state.stats.broker_errors;
      if (!p.dirty)
        self->state.presence_retry.push_back(user);
      p.dirty = true;
    } else if (on) {
      p.announced.insert(device);
    } else {
      p.announced.erase(device);
    }
    if (p.in_flight == 0 && !p.dirty)
      announce(self, user); // it may have changed meanwhile
    check_drained(self);
  });
}


} // namespace

void check_drained(hub_ptr self) {
  auto& st = self->state;
  if (st.drain_waiters.empty() || sockets_of(st.stats) > 0)
    return;
  bool dirty = false;
  for (auto& [user, u] : st.users) {
    if (u.presence.in_flight > 0)
      return;
    dirty = dirty || u.presence.dirty;
  }
  if (dirty) { // a failed announcement: again soon, not at the next sweep
    if (!st.redrain_pending) {
      st.redrain_pending = true;
      self->delayed_send(self, std::chrono::milliseconds{100}, redrain_atom::value);
    }
    return;
  }
  for (auto& rp : st.drain_waiters)
    rp.deliver(true);
  st.drain_waiters.clear();
}

void announce(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return;
  auto& u = i->second;
  if (u.presence.in_flight > 0)
    return; // reconciled again when those are answered
  u.presence.dirty = false;
  auto ops = presence_changes(u);
  // All counted before the first goes: a local broker answers at once, and
  // the last answer reconciles again.
  u.presence.in_flight += static_cast<int>(ops.size());
  for (auto& [device, on] : ops) {
    auto j = self->state.users.find(user);
    if (j == self->state.users.end())
      return;
    announce_one(self, user, j->second, device, on);
  }
  if (ops.empty())
    forget_if_done(self, user);
}

void retry_failed_announcements(hub_ptr self) {
  auto& st = self->state;
  std::vector<std::string> retry;
  retry.swap(st.presence_retry);
  for (auto& user : retry) {
    auto i = st.users.find(user);
    if (i == st.users.end() || !i->second.presence.dirty)
      continue; // gone, or announced since
    if (i->second.presence.in_flight > 0)
      st.presence_retry.push_back(user); // its answers do not retry it
    else
      announce(self, user); // failing again puts it back on the list
  }
}

void remote_presence(hub_ptr self, user_entry& u, const stream_message& m) {
  if (m.presence
      && !track_remote(u, m.presence->node, m.presence->device, m.present,
                       m.presence->connected_at))
    return; // the sockets know it already
  send_all(self, u, m.frame);
}

void remote_devices(hub_ptr self, const std::string& user, user_entry& u,
                    const std::vector<presence_entry>& list, bool complete) {
  auto diff = replace_remote(u, list, self->state.cfg.cluster.instance, complete);
  // What changed unseen (a presence message lost) is told to the sockets.
  auto now = now_ms(self);
  for (auto& device : diff.left)
    send_all(self, u, device_frame(msg::server_type::device_disconnected, user, device, now));
  for (auto& [device, at] : diff.arrived)
    send_all(self, u, device_frame(msg::server_type::device_connected, user, device, at));
  // The broker's list of this node's own devices is the truth too: a write
  // it lost (a failover to a replica that missed it) is made again.
  if (u.presence.in_flight == 0) {
    device_set listed;
    for (auto& d : list)
      if (d.node == self->state.cfg.cluster.instance)
        listed.insert(d.device);
    if (listed != u.presence.announced) {
      u.presence.announced = std::move(listed);
      announce(self, user);
    }
  }
}

} // namespace kullsync::server

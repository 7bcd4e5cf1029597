// A hub shard's presence in a cluster: which of a user's devices are on
// other nodes, and telling the other nodes which are here. Presence is not
// in the stream, so it is kept right by reconciling: the broker's list of
// this node's devices is brought to what is here whenever either changes
// or a previous attempt failed, and the other nodes' devices are re-read
// with every position check (a lost presence message heals there).
#include <set>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

namespace {

/// The devices with a socket here that is not going away.
std::set<std::string> devices_here(const user_entry& u) {
  std::set<std::string> out;
  for (auto& s : u.sockets)
    if (!s.closing)
      out.insert(s.device_id);
  return out;
}

void send_to_sockets(hub_ptr self, user_entry& u, const shared_frame& f) {
  for (auto& s : u.sockets)
    send_frame(self, s, f);
}

int64_t connected_at(const user_entry& u, const std::string& device, int64_t dflt) {
  for (auto& s : u.sockets)
    if (s.device_id == device)
      return s.connected_at;
  return dflt;
}

/// Tells the broker that `device` is here (`on`) or left.
void announce_one(hub_ptr self, const std::string& user, const std::string& device,
                  bool on) {
  auto& st = self->state;
  auto& u = st.users[user];
  auto now = now_ms(self);
  auto at = on ? connected_at(u, device, now) : now;
  publish_request req;
  req.msg.user = user;
  req.msg.origin = st.cfg.cluster.instance;
  req.msg.frame = device_frame(on ? msg::server_type::device_connected
                                  : msg::server_type::device_disconnected,
                               user, device, at)
                    .str();
  req.presence = presence_entry{st.cfg.cluster.instance, device, at};
  req.present = on;
  ++u.presence.in_flight;
  auto done = [=](bool ok) {
    auto i = self->state.users.find(user);
    if (i == self->state.users.end())
      return;
    auto& p = i->second.presence;
    --p.in_flight;
    if (!ok)
      p.dirty = true;
    else if (on)
      p.announced.insert(device);
    else
      p.announced.erase(device);
    if (p.in_flight == 0 && !p.dirty)
      cluster_announce(self, user); // it may have changed meanwhile
  };
  self->request(st.cfg.cluster.broker, caf::infinite, publish_atom::value,
                std::move(req))
    .then([=](const publish_receipt&) { done(true); },
          [=](caf::error&) {
            ++self->state.stats.broker_errors;
            done(false);
          });
}

} // namespace

void cluster_announce(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return;
  auto& u = i->second;
  auto& p = u.presence;
  if (p.in_flight > 0)
    return; // reconciled again when those are answered
  p.dirty = false;
  auto here = devices_here(u);
  std::vector<std::pair<std::string, bool>> ops;
  for (auto& d : here)
    if (!p.announced.count(d))
      ops.emplace_back(d, true);
  for (auto& d : p.announced)
    if (!here.count(d))
      ops.emplace_back(d, false);
  for (auto& [device, on] : ops)
    announce_one(self, user, device, on);
  // A user with no socket here stays until the broker knows they left.
  if (ops.empty() && u.sockets.empty() && !u.follow && p.announced.empty())
    erase_user(self, i);
}

void cluster_announce_dirty(hub_ptr self) {
  std::vector<std::string> dirty;
  for (auto& [user, u] : self->state.users)
    if (u.presence.dirty && u.presence.in_flight == 0)
      dirty.push_back(user);
  for (auto& user : dirty)
    cluster_announce(self, user);
}

bool cluster_track_presence(hub_ptr self, user_entry& u, const std::string& origin,
                            std::string_view frame) {
  constexpr std::string_view on = R"({"type":"DEVICE_CONNECTED")";
  constexpr std::string_view off = R"({"type":"DEVICE_DISCONNECTED")";
  bool connected = frame.substr(0, on.size()) == on;
  if (!connected && frame.substr(0, off.size()) != off)
    return true;
  auto m = msg::decode_server(frame);
  auto* d = m ? std::get_if<msg::device_connection>(&m->body) : nullptr;
  if (!d) {
    self->state.log->warn("a presence frame from the broker does not decode: ignored");
    return false;
  }
  auto key = std::make_pair(origin, d->device_id);
  if (connected) {
    auto known = device_present(u, d->device_id, nullptr);
    u.remote_devices[key] = d->timestamp.value_or(0);
    return !known;
  }
  u.remote_devices.erase(key);
  return !device_present(u, d->device_id, nullptr);
}

void cluster_remote_devices(hub_ptr self, const std::string& user, user_entry& u,
                            const std::vector<presence_entry>& list) {
  auto& me = self->state.cfg.cluster.instance;
  std::set<std::string> before;
  for (auto& [where, at] : u.remote_devices)
    before.insert(where.second);
  u.remote_devices.clear();
  for (auto& d : list)
    if (d.node != me)
      u.remote_devices[{d.node, d.device}] = d.connected_at;
  // What changed unseen (a presence message lost) is told to the sockets.
  auto now = now_ms(self);
  for (auto& device : before)
    if (!device_present(u, device, nullptr))
      send_to_sockets(self, u, device_frame(msg::server_type::device_disconnected, user,
                                            device, now));
  for (auto& [where, at] : u.remote_devices)
    if (!before.count(where.second) && !device_here(u, where.second, nullptr)) {
      before.insert(where.second);
      send_to_sockets(self, u, device_frame(msg::server_type::device_connected, user,
                                            where.second, at));
    }
}

} // namespace kullsync::server

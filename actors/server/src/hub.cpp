// A hub shard: the user -> sockets registry, what the server remembers per
// user, and (v2) the users' streams. See hub_actor in protocol.hpp.
#include <algorithm>
#include <functional>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/io_thread.hpp"

namespace kullsync::server {

int64_t now_ms(hub_ptr self) {
  return epoch_ms(self->home_system(), self->state.clock);
}

void send_frame(hub_ptr self, device_socket& s, const shared_frame& f) {
  if (s.start || s.closing)
    return; // its WELCOME (cluster) will cover this, or it is going
  if (s.holding) {
    s.held.push_back(f);
    return;
  }
  // A frame is a shared_ptr: a typed send per socket copies only that.
  self->send(s.socket, send_atom::value, f);
  ++self->state.stats.frames_out;
}

void deliver(hub_ptr self, user_entry& u, const shared_frame& f,
             const device_socket* except) {
  for (auto& s : u.sockets)
    if (&s != except)
      send_frame(self, s, f);
}

namespace {

msg::device_connection device_data(const std::string& device, int64_t ts) {
  msg::device_connection d;
  d.device_id = device;
  d.timestamp = ts;
  return d;
}

} // namespace

/// DEVICE_CONNECTED / DEVICE_DISCONNECTED as the deployed server sends them:
/// the device is named in `data` and as the envelope's `deviceId`. Presence
/// carries no position, so v1 and v2 sockets share the frame.
shared_frame device_frame(msg::server_type type, const std::string& user,
                          const std::string& device, int64_t ts) {
  return make_shared_frame(msg::encode(
    msg::make_server_message(type, device_data(device, ts), ts, device, user)));
}

namespace {

/// An estimate of what remembering `u` costs: map nodes, strings, the
/// shoot table's indexes.
size_t state_cost(const user_entry& u) {
  constexpr size_t per_shoot = 400, per_credit = 160;
  return u.shoots.size() * per_shoot + (u.credits ? per_credit + u.credits->reason.size() : 0);
}

/// Recounts what `u` costs after a change.
void recount(hub_ptr self, user_entry& u) {
  auto& st = self->state.stats;
  auto now = state_cost(u);
  st.state_bytes = st.state_bytes - u.bytes + now;
  u.bytes = now;
}

} // namespace

void erase_user(hub_ptr self, std::map<std::string, user_entry>::iterator i) {
  auto& st = self->state;
  st.stats.state_bytes -= i->second.bytes;
  st.stats.shoots_evicted += i->second.shoots.evicted();
  st.users.erase(i);
  st.stats.users = st.users.size();
}

void forget_if_empty(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i != self->state.users.end() && i->second.sockets.empty()
      && !i->second.credits && i->second.shoots.empty())
    erase_user(self, i);
  self->state.stats.users = self->state.users.size();
}

bool device_here(const user_entry& u, const std::string& device,
                 const device_socket* except) {
  for (auto& s : u.sockets)
    if (&s != except && s.device_id == device)
      return true;
  return false;
}

bool device_present(const user_entry& u, const std::string& device,
                    const device_socket* except) {
  if (device_here(u, device, except))
    return true;
  for (auto& [where, at] : u.remote_devices)
    if (where.second == device)
      return true;
  return false;
}

/// The user's devices connected now, each once.
std::vector<msg::device_connection> devices_of(const user_entry& u) {
  std::vector<msg::device_connection> out;
  for (auto& s : u.sockets)
    if (std::none_of(out.begin(), out.end(),
                     [&](auto& d) { return d.device_id == s.device_id; }))
      out.push_back(device_data(s.device_id, s.connected_at));
  for (auto& [where, at] : u.remote_devices)
    if (std::none_of(out.begin(), out.end(),
                     [&, &device = where.second](auto& d) { return d.device_id == device; }))
      out.push_back(device_data(where.second, at));
  return out;
}

namespace {

/// A session's socket leaves its user (the session said so, or died).
void leave(hub_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto entry = st.by_session.find(who);
  if (entry == st.by_session.end())
    return;
  auto user = std::move(entry->second);
  st.by_session.erase(entry);
  auto i = st.users.find(user);
  if (i == st.users.end())
    return;
  auto& socks = i->second.sockets;
  auto j = std::find_if(socks.begin(), socks.end(),
                        [&](auto& s) { return s.session.address() == who; });
  if (j == socks.end())
    return;
  auto device = std::move(j->device_id);
  st.stats.v2_sockets -= j->v2 ? 1 : 0;
  socks.erase(j);
  --st.stats.sockets;
  auto here = device_here(i->second, device, nullptr);
  if (!here && !device_present(i->second, device, nullptr))
    deliver(self, i->second,
            device_frame(msg::server_type::device_disconnected, user, device,
                         now_ms(self)));
  if (st.clustered())
    cluster_left(self, i);
  else
    forget_if_empty(self, user);
}

} // namespace

void remember(hub_ptr self, user_entry& u, const std::string& user,
              const msg::server_message& m) {
  if (auto* c = std::get_if<msg::credit_update>(&m.body)) {
    u.credits = std::make_unique<msg::credit_update>(*c);
  } else if (auto* p = std::get_if<msg::shoot_progress>(&m.body)) {
    auto before = u.shoots.evicted();
    if (u.shoots.empty())
      u.shoots.set_capacity(self->state.cfg.state.shoots_per_user);
    if (auto v = u.shoots.put(*p, m.timestamp))
      self->delayed_send(self, self->state.cfg.shoot_linger, expire_atom::value,
                         user, p->shoot_id, *v);
    if (u.shoots.evicted() != before)
      self->state.log->debug("user {}: more than {} active shoots, the least "
                             "recently updated left", user,
                             self->state.cfg.state.shoots_per_user);
  } else {
    return;
  }
  u.last_update_ms = now_ms(self);
  recount(self, u);
}

/// Past the node's memory bound: the users without a device that were idle
/// longest are forgotten first (users with devices stay: their state is
/// bounded per user, and their sockets per address).
void enforce_memory(hub_ptr self) {
  auto& st = self->state;
  if (st.stats.state_bytes <= st.cfg.state.memory_bytes)
    return;
  std::vector<std::pair<int64_t, std::string>> idle;
  for (auto& [user, u] : st.users)
    if (u.sockets.empty())
      idle.emplace_back(u.last_update_ms, user);
  std::sort(idle.begin(), idle.end());
  // Down to 90%, so that the next few messages do not sort again.
  auto target = st.cfg.state.memory_bytes / 10 * 9;
  size_t n = 0;
  for (auto& [at, user] : idle) {
    if (st.stats.state_bytes <= target)
      break;
    erase_user(self, st.users.find(user));
    ++n;
  }
  st.stats.users_forgotten += n;
  st.log->warn("remembered state over {} MiB: forgot the {} users idle longest",
               st.cfg.state.memory_bytes >> 20, n);
}

/// What the hub remembers of `user`, as of the stream's top.
msg::user_state snapshot(hub_ptr self, const std::string& user) {
  msg::user_state s;
  s.user_id = user;
  s.seq = self->state.clustered() ? cluster_top(self, user)
                                   : self->state.history->top(user, now_ms(self));
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return s;
  if (i->second.credits)
    s.credits = *i->second.credits;
  for (auto& kv : i->second.shoots.shoots())
    s.shoots.push_back(kv.second);
  s.devices = devices_of(i->second);
  return s;
}

/// The message's frame for one protocol version: v2 with its position.
shared_frame encode_for(const msg::server_message& m, const std::string& data_json,
                        std::optional<uint64_t> seq) {
  if (data_json.empty()) {
    if (!seq)
      return make_shared_frame(msg::encode(m));
    auto numbered = m;
    numbered.seq = seq;
    return make_shared_frame(msg::encode(numbered));
  }
  return make_shared_frame(msg::encode_envelope(m.type_name, data_json, m.timestamp,
                                                m.device_id.value_or("server"),
                                                m.user_id.value_or(""), seq));
}

shared_frame control_frame(hub_ptr self, msg::server_type type, msg::server_body body) {
  return make_shared_frame(msg::encode(
    msg::make_server_message(type, std::move(body), now_ms(self), std::nullopt)));
}

void welcome(hub_ptr self, const join_request& req, user_entry& u, device_socket& me,
             const std::string& epoch, uint64_t seq, bool recovered) {
  msg::welcome w;
  w.epoch = epoch;
  w.seq = seq;
  w.device_id = req.device;
  w.expires_at = req.expires_at;
  w.devices = devices_of(u);
  w.recovered = recovered;
  send_frame(self, me, control_frame(self, msg::server_type::welcome, std::move(w)));
  if (recovered)
    return;
  ++self->state.stats.resumes_snapshot;
  auto s = snapshot(self, req.user);
  s.user_id.clear(); // the socket knows whose it is
  send_frame(self, me, control_frame(self, msg::server_type::snapshot, std::move(s)));
}

namespace {


bool join(hub_ptr self, const join_request& req, session_actor who,
          transport_actor socket) {
  auto& st = self->state;
  auto& u = st.users[req.user];
  if (u.sockets.size() >= st.cfg.max_sockets_per_user) {
    ++st.stats.rejected_sockets;
    st.log->warn("user {} has {} sockets already: refusing device {}", req.user,
                 u.sockets.size(), req.device);
    return false;
  }
  self->monitor(who);
  st.by_session[who.address()] = req.user;
  auto now = now_ms(self);
  auto& me = u.sockets.emplace_back();
  me.device_id = req.device;
  me.session = who;
  me.socket = std::move(socket);
  me.connected_at = now;
  me.v2 = req.v2;
  ++st.stats.sockets;
  st.stats.v2_sockets += req.v2 ? 1 : 0;
  st.stats.users = st.users.size();
  if (st.clustered()) {
    me.start = std::make_unique<join_request>(req);
    cluster_joined(self, req.user, u, me);
    return true;
  }
  auto hello = device_frame(msg::server_type::device_connected, req.user, req.device, now);
  if (req.v2) {
    alone_welcome(self, req, u, me); // presence is in WELCOME
  } else {
    send_frame(self, me, hello); // the new device hears of itself first
  }
  if (!device_present(u, req.device, &me)) // else the others know it already
    deliver(self, u, hello, &me);
  return true;
}

} // namespace

void ack(hub_ptr self, const std::string& id, uint64_t seq, const transport_actor& to,
         int64_t received_ns) {
  self->send(to, send_atom::value,
             control_frame(self, msg::server_type::ack, msg::ack{id, seq}));
  if (auto& c = self->state.counters) {
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    c->ack_latency.observe(
      static_cast<double>(std::chrono::nanoseconds{now}.count() - received_ns) / 1e9);
  }
}

namespace {



/// Shoots that stopped reporting, and users with no device whose state
/// nobody updated for a long time.
void forget_idle(hub_ptr self, int64_t now) {
  auto& st = self->state;
  for (auto i = st.users.begin(); i != st.users.end();) {
    auto next = std::next(i);
    auto& u = i->second;
    if (u.sockets.empty() && now - u.last_update_ms > st.cfg.state.user_idle_ms) {
      ++st.stats.users_forgotten;
      erase_user(self, i);
    } else if (!u.shoots.empty()
               && u.shoots.drop_idle(now - st.cfg.state.shoot_idle_ms) > 0) {
      recount(self, u);
    }
    i = next;
  }
}

/// Every so often: streams and ids past the history's lifetime go (a node
/// alone); the followed streams' positions are checked (a cluster).
void sweep(hub_ptr self) {
  auto& st = self->state;
  auto now = now_ms(self);
  if (st.clustered()) {
    cluster_check(self, now);
    cluster_announce_dirty(self);
    auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(
      st.cfg.cluster.position_check);
    self->send(st.cfg.cluster.broker, alive_atom::value, st.cfg.cluster.instance,
               static_cast<int64_t>(ttl.count()));
    self->delayed_send(self, st.cfg.cluster.position_check / 4, sweep_atom::value);
    return;
  }
  st.history->sweep(now, [&](const std::string& user) {
    auto i = st.users.find(user);
    return i != st.users.end() && !i->second.sockets.empty();
  });
  st.ids->expire(now);
  forget_idle(self, now);
  auto period = std::clamp<int64_t>(st.cfg.history.ttl_ms / 4, 1000, 60000);
  self->delayed_send(self, std::chrono::milliseconds{period}, sweep_atom::value);
}

hub_stats stats(hub_ptr self) {
  auto s = self->state.stats;
  if (auto& history = self->state.history) {
    auto h = history->stats();
    s.history_entries = h.entries;
    s.history_bytes = h.bytes;
    s.history_evicted = h.evicted;
  }
  for (auto& [user, u] : self->state.users)
    s.shoots_evicted += u.shoots.evicted();
  return s;
}

hub_impl::behavior_type hub(hub_ptr self, server_config cfg, wall_clock clock,
                            std::string node_epoch,
                            std::shared_ptr<server_counters> counters) {
  auto& st = self->state;
  st.counters = std::move(counters);
  st.cfg = std::move(cfg);
  st.clock = clock;
  if (!st.clustered()) {
    st.history = std::make_unique<memory_history>(std::move(node_epoch), st.cfg.history);
    // Ids for at least the history window: as many as the histories hold.
    st.ids = std::make_unique<client_ids>(
      st.cfg.history.ttl_ms, std::max<size_t>(100000, 4 * st.cfg.history.size));
  }
  run_on_io_thread(self);
  self->set_down_handler([=](const caf::down_msg& dm) { leave(self, dm.source); });
  sweep(self);
  return {
    [=](join_atom, const join_request& req, session_actor who, transport_actor socket) {
      return join(self, req, std::move(who), std::move(socket));
    },
    [=](leave_atom, const session_actor& who) {
      self->demonitor(who.address());
      leave(self, who.address());
    },
    [=](publish_atom, const std::string& user, const msg::server_message& m,
        const std::string& data_json) {
      if (!self->state.clustered())
        alone_publish(self, user, m, data_json);
      else
        cluster_publish(self, user, m, data_json, {}, {}, {});
    },
    [=](publish_atom, const std::string& user, const msg::server_message& m,
        const std::string& data_json, const std::string& id,
        const transport_actor& ack_to, int64_t received_ns) {
      if (!self->state.clustered())
        alone_publish_acked(self, user, m, data_json, id, ack_to, received_ns);
      else
        cluster_publish(
          self, user, m, data_json, "c:" + id,
          [=](const publish_receipt& r) {
            cluster_ack(self, user, id, r, ack_to, received_ns);
          },
          [=](const caf::error&) {
            msg::nack n{id, msg::nack_code::unavailable, "the stream is unavailable"};
            self->send(ack_to, send_atom::value,
                       control_frame(self, msg::server_type::nack, std::move(n)));
          });
    },
    [=](trigger_atom, const std::string& user, const msg::server_message& m,
        const std::string& key) -> caf::result<uint64_t> {
      if (!self->state.clustered())
        return alone_trigger(self, user, m, key);
      auto rp = self->make_response_promise<uint64_t>();
      cluster_publish(
        self, user, m, {}, key.empty() ? std::string{} : "h:" + key,
        [rp](const publish_receipt& r) mutable { rp.deliver(r.seq); },
        [rp](const caf::error& e) mutable { rp.deliver(e); });
      return rp;
    },
    [=](deliver_atom, stream_message& m) { cluster_deliver(self, m); },
    [=](resync_atom) { cluster_resync(self); },
    [=](refollow_atom, const std::string& user, uint64_t gen, bool fresh) {
      cluster_refollow(self, user, gen, fresh);
    },
    [=](expire_atom, const std::string& user, const std::string& shoot, uint64_t v) {
      auto i = self->state.users.find(user);
      if (i != self->state.users.end() && i->second.shoots.expire(shoot, v)) {
        recount(self, i->second);
        forget_if_empty(self, user);
      }
    },
    [=](sweep_atom) { sweep(self); },
    [=](shutdown_atom, uint16_t code, const std::string& reason) {
      for (auto& [user, u] : self->state.users)
        for (auto& s : u.sockets)
          self->send(s.session, close_atom::value, code, reason);
    },
    [=](snapshot_atom, const std::string& user) -> caf::result<msg::user_state> {
      if (self->state.clustered())
        return cluster_snapshot(self, user);
      return snapshot(self, user);
    },
    [=](stats_atom) { return stats(self); },
  };
}

} // namespace

hub_actor spawn_hub(caf::actor_system& sys, const server_config& cfg,
                    wall_clock clock, std::string node_epoch,
                    std::shared_ptr<server_counters> counters) {
  return caf::actor_cast<hub_actor>(
    sys.spawn(hub, cfg, clock, std::move(node_epoch), std::move(counters)));
}

const hub_actor& hub_for(const std::vector<hub_actor>& hubs,
                         const std::string& user) {
  return hubs[std::hash<std::string>{}(user) % hubs.size()];
}

} // namespace kullsync::server

#include <algorithm>
#include <functional>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/common/shoot_table.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/io_thread.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

namespace {

struct device_socket {
  std::string device_id;
  session_actor session;
  transport_actor socket;
};

struct user_entry {
  std::vector<device_socket> sockets;
  // The last CREDIT_UPDATE; on the heap, as most users connected now have
  // none and an idle user entry should stay small.
  std::unique_ptr<msg::credit_update> credits;
  shoot_table shoots;
};

struct hub_state {
  server_config cfg;
  wall_clock clock;
  std::map<std::string, user_entry> users;
  std::map<caf::actor_addr, std::string> by_session; // session -> its user
  hub_stats stats;
  std::shared_ptr<spdlog::logger> log = log::get("server.hub");
  static inline const char* name = "kullsync.hub";
};

using hub_ptr = hub_impl::stateful_pointer<hub_state>;

int64_t now_ms(hub_ptr self) {
  return epoch_ms(self->home_system(), self->state.clock);
}

void deliver(hub_ptr self, user_entry& u, const shared_frame& f,
             const device_socket* first = nullptr) {
  // A frame is a shared_ptr: a typed send per socket copies only that.
  if (first != nullptr)
    self->send(first->socket, send_atom::value, f);
  for (auto& s : u.sockets)
    if (&s != first)
      self->send(s.socket, send_atom::value, f);
  self->state.stats.frames_out += u.sockets.size();
}

/// DEVICE_CONNECTED / DEVICE_DISCONNECTED as the deployed server sends them:
/// the device is named in `data` and as the envelope's `deviceId`.
shared_frame device_frame(hub_ptr self, msg::server_type type,
                          const std::string& user, const std::string& device) {
  msg::device_connection d;
  d.device_id = device;
  auto ts = now_ms(self);
  d.timestamp = ts;
  return make_shared_frame(
    msg::encode(msg::make_server_message(type, d, ts, device, user)));
}

void forget_if_empty(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i != self->state.users.end() && i->second.sockets.empty()
      && !i->second.credits && i->second.shoots.empty())
    self->state.users.erase(i);
  self->state.stats.users = self->state.users.size();
}

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
  socks.erase(j);
  --st.stats.sockets;
  deliver(self, i->second,
          device_frame(self, msg::server_type::device_disconnected, user, device));
  forget_if_empty(self, user);
}

void remember(hub_ptr self, user_entry& u, const std::string& user,
              const msg::server_message& m) {
  if (auto* c = std::get_if<msg::credit_update>(&m.body)) {
    u.credits = std::make_unique<msg::credit_update>(*c);
  } else if (auto* p = std::get_if<msg::shoot_progress>(&m.body)) {
    if (auto v = u.shoots.put(*p))
      self->delayed_send(self, self->state.cfg.shoot_linger, expire_atom::value,
                         user, p->shoot_id, *v);
  }
}

msg::user_state snapshot(hub_ptr self, const std::string& user) {
  msg::user_state s;
  s.user_id = user;
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return s;
  if (i->second.credits)
    s.credits = *i->second.credits;
  for (auto& kv : i->second.shoots.shoots())
    s.shoots.push_back(kv.second);
  for (auto& sock : i->second.sockets) {
    msg::device_connection d;
    d.device_id = sock.device_id;
    s.devices.push_back(std::move(d));
  }
  return s;
}

hub_impl::behavior_type hub(hub_ptr self, server_config cfg, wall_clock clock) {
  self->state.cfg = std::move(cfg);
  self->state.clock = clock;
  run_on_io_thread(self);
  self->set_down_handler([=](const caf::down_msg& dm) { leave(self, dm.source); });
  return {
    [=](join_atom, const std::string& user, const std::string& device,
        session_actor who, transport_actor socket) {
      auto& st = self->state;
      auto& u = st.users[user];
      if (u.sockets.size() >= st.cfg.max_sockets_per_user) {
        ++st.stats.rejected_sockets;
        st.log->warn("user {} has {} sockets already: refusing device {}", user,
                     u.sockets.size(), device);
        return false;
      }
      self->monitor(who);
      st.by_session[who.address()] = user;
      u.sockets.push_back({device, who, std::move(socket)});
      ++st.stats.sockets;
      st.stats.users = st.users.size();
      // The new device hears of itself first, then the others hear of it.
      deliver(self, u,
              device_frame(self, msg::server_type::device_connected, user, device),
              &u.sockets.back());
      return true;
    },
    [=](leave_atom, const session_actor& who) {
      self->demonitor(who.address());
      leave(self, who.address());
    },
    [=](publish_atom, const std::string& user, const msg::server_message& m,
        const std::string& data_json) {
      auto& u = self->state.users[user];
      remember(self, u, user, m);
      auto text = data_json.empty()
                    ? msg::encode(m)
                    : msg::encode_envelope(m.type_name, data_json, m.timestamp,
                                           m.device_id.value_or("server"),
                                           m.user_id.value_or(""));
      deliver(self, u, make_shared_frame(std::move(text)));
      forget_if_empty(self, user);
    },
    [=](expire_atom, const std::string& user, const std::string& shoot,
        uint64_t v) {
      auto i = self->state.users.find(user);
      if (i != self->state.users.end() && i->second.shoots.expire(shoot, v))
        forget_if_empty(self, user);
    },
    [=](shutdown_atom, uint16_t code, const std::string& reason) {
      for (auto& [user, u] : self->state.users)
        for (auto& s : u.sockets)
          self->send(s.session, close_atom::value, code, reason);
    },
    [=](snapshot_atom, const std::string& user) { return snapshot(self, user); },
    [=](stats_atom) { return self->state.stats; },
  };
}

} // namespace

hub_actor spawn_hub(caf::actor_system& sys, const server_config& cfg,
                    wall_clock clock) {
  return caf::actor_cast<hub_actor>(sys.spawn(hub, cfg, clock));
}

const hub_actor& hub_for(const std::vector<hub_actor>& hubs,
                         const std::string& user) {
  return hubs[std::hash<std::string>{}(user) % hubs.size()];
}

} // namespace kullsync::server

#include "scripted_peer.hpp"

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/common/clock.hpp"
#include "kullsync/common/shoot_table.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/server/auth.hpp"

namespace kullsync::test {

namespace {

struct peer_link {
  accepted_link_actor end;
  std::string target;
  header_list headers;
  server::identity who;
  bool registered = false;
  flow::credit_return credit;
};

struct peer_state {
  std::map<uint64_t, peer_link> links;
  std::map<std::string, peer_truth> users;
  uint64_t next_tag = 1;
  wall_clock clock; // epoch time at actor clock zero
  server::legacy_authenticator auth{42};
  static inline const char* name = "kullsync.test.scripted_peer";
};

using peer_ptr = peer_actor::stateful_pointer<peer_state>;

int64_t now_ms(peer_ptr self) {
  return epoch_ms(self->home_system(), self->state.clock);
}

void to_user(peer_ptr self, const std::string& user, const std::string& text,
             uint64_t except = 0) {
  for (auto& [tag, l] : self->state.links)
    if (l.registered && l.who.user_id == user && tag != except)
      self->send(l.end, send_atom::value, text);
}

/// The backend's knowledge as a client applying every message in order sees
/// it: a running shoot's count never goes back (shoot_table's rule).
void record(peer_truth& t, const msg::server_message& m) {
  if (auto* p = std::get_if<msg::shoot_progress>(&m.body)) {
    auto i = t.shoots.find(p->shoot_id);
    if (i == t.shoots.end() || !shoot_table::is_stale(i->second, 0, *p, 0))
      t.shoots[p->shoot_id] = *p;
  }
  else if (auto* c = std::get_if<msg::credit_update>(&m.body))
    t.credits = c->new_balance;
}

void device_event(peer_ptr self, uint64_t tag, msg::server_type type) {
  auto& l = self->state.links[tag];
  msg::device_connection d;
  d.device_id = l.who.device_id;
  d.timestamp = now_ms(self);
  auto text = msg::encode(msg::make_server_message(type, d, now_ms(self),
                                                   d.device_id, l.who.user_id));
  if (type == msg::server_type::device_connected)
    self->send(l.end, send_atom::value, text);
  to_user(self, l.who.user_id, text, tag);
}

void on_opened(peer_ptr self, uint64_t tag) {
  auto& l = self->state.links[tag];
  auto token = server::extract_token(l.target, l.headers);
  auto r = self->state.auth.authenticate(server::auth_request{token, {}, false, now_ms(self)});
  if (!r.who) {
    self->send(l.end, close_atom::value, r.failure.close_code, r.failure.reason);
    self->state.links.erase(tag);
    return;
  }
  l.who = *r.who;
  l.registered = true;
  self->state.users[l.who.user_id].devices.insert(l.who.device_id);
  device_event(self, tag, msg::server_type::device_connected);
}

void on_frame(peer_ptr self, uint64_t tag, const std::string& text) {
  auto i = self->state.links.find(tag);
  if (i == self->state.links.end() || !i->second.registered)
    return;
  auto& l = i->second;
  auto m = msg::decode_client(text);
  if (!m)
    return; // ignored, as the legacy server does
  if (m->type == msg::client_type::ping) {
    self->send(l.end, send_atom::value, msg::encode(msg::make_pong(now_ms(self))));
  } else if (m->type == msg::client_type::update_progress) {
    auto out = msg::make_server_message(msg::server_type::shoot_progress,
                                        std::get<msg::shoot_progress>(m->body),
                                        now_ms(self), l.who.device_id,
                                        l.who.user_id);
    record(self->state.users[l.who.user_id], out);
    to_user(self, l.who.user_id, msg::encode(out));
  }
}

void on_closed(peer_ptr self, uint64_t tag) {
  auto i = self->state.links.find(tag);
  if (i == self->state.links.end())
    return;
  if (i->second.registered) {
    auto who = i->second.who;
    device_event(self, tag, msg::server_type::device_disconnected);
    self->state.links.erase(i);
    bool still = false;
    for (auto& kv : self->state.links)
      still |= kv.second.who.user_id == who.user_id
               && kv.second.who.device_id == who.device_id;
    if (!still)
      self->state.users[who.user_id].devices.erase(who.device_id);
  } else {
    self->state.links.erase(i);
  }
}

void send_fresh(peer_ptr self, const std::string& user) {
  auto& t = self->state.users[user];
  auto ts = now_ms(self);
  auto send = [&](const msg::shoot_progress& p) {
    to_user(self, user, msg::encode(msg::make_server_message(
                          msg::server_type::shoot_progress, p, ts, "server", user)));
  };
  for (auto& [id, p] : t.shoots) {
    // A client that missed a run's end (v1 loses what is sent while it is
    // offline) would keep the old run's higher count: the backend ends the
    // run it republishes, then sends where it is.
    if (!msg::is_terminal(p.status)) {
      auto end = p;
      end.status = msg::shoot_status::failed;
      send(end);
    }
    send(p);
  }
  if (t.credits)
    to_user(self, user,
            msg::encode(msg::make_server_message(
              msg::server_type::credit_update,
              msg::credit_update{user, *t.credits, 0, "state refresh"}, ts,
              "server", user)));
  for (auto& dev : t.devices) {
    msg::device_connection d;
    d.device_id = dev;
    to_user(self, user, msg::encode(msg::make_server_message(
                          msg::server_type::device_connected, d, ts, dev, user)));
  }
}

peer_actor::behavior_type peer(peer_ptr self, memory_network_actor net,
                               std::vector<std::string> urls,
                               int64_t wall_start_ms, peer_world world) {
  self->state.clock = wall_clock{wall_start_ms, 0};
  self->state.users = std::move(world);
  for (auto& kv : self->state.users)
    kv.second.devices.clear(); // nobody is connected to a fresh process
  for (auto& url : urls)
    self->send(net, listen_atom::value, url,
               caf::actor_cast<acceptor_actor>(self));
  return {
    [=](accept_atom, accepted_link_actor end, std::string& target,
        header_list& headers, const std::string&) {
      auto tag = self->state.next_tag++;
      self->send(end, attach_atom::value,
                 caf::actor_cast<transport_listener_actor>(self), tag, std::string{});
      self->state.links[tag] = peer_link{std::move(end), std::move(target),
                                         std::move(headers), {}, false, {}};
    },
    [=](opened_atom, uint64_t tag, const std::string&) { on_opened(self, tag); },
    [=](frame_atom, uint64_t tag, const frame_batch& frames) {
      for (auto& text : frames)
        on_frame(self, tag, text);
      auto i = self->state.links.find(tag);
      if (i == self->state.links.end())
        return;
      if (auto n = i->second.credit.handled(frames.size()))
        self->send(i->second.end, credit_atom::value, tag, n);
    },
    [=](closed_atom, uint64_t tag, uint16_t, const std::string&) {
      on_closed(self, tag);
    },
    [=](publish_atom, const std::string& user, const msg::server_message& m) {
      record(self->state.users[user], m);
      to_user(self, user, msg::encode(m));
    },
    [=](fresh_atom, const std::string& user) { send_fresh(self, user); },
    [=](peer_close_atom, uint16_t code) {
      for (auto& kv : self->state.links)
        self->send(kv.second.end, close_atom::value, code,
                   std::string{"server closing"});
    },
    [=](get_atom, const std::string& user) { return self->state.users[user]; },
  };
}

} // namespace

peer_actor spawn_scripted_peer(caf::actor_system& sys, memory_network_actor net,
                               std::vector<std::string> urls,
                               int64_t wall_start_ms, peer_world world) {
  return sys.spawn(peer, std::move(net), std::move(urls), wall_start_ms,
                   std::move(world));
}

} // namespace kullsync::test

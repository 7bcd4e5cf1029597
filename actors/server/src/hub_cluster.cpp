// A hub shard in a cluster, its sockets and publishes: a socket starts at a
// position it can trust (v2: WELCOME and the replay of what it missed, read
// from the broker while live frames for it are held, or a SNAPSHOT), a
// publish goes to the broker, which numbers it, and a client message's ACK
// waits until its position was sent here. hub_stream.cpp follows the
// streams. The broker numbers; this node never does.
#include <caf/actor_system.hpp>
#include <caf/make_message.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

namespace {

device_socket* socket_of(user_entry& u, const caf::actor_addr& session) {
  for (auto& s : u.sockets)
    if (s.session.address() == session)
      return &s;
  return nullptr;
}

/// What of the user's state a numbered message replaces, for the broker to
/// keep: its SNAPSHOT on a node that starts following the user later.
void state_key(hub_ptr self, const msg::server_message& m, publish_request& req) {
  req.state_at = m.timestamp;
  req.state_now = now_ms(self);
  if (std::holds_alternative<msg::credit_update>(m.body)) {
    req.state_field = "credits";
  } else if (auto* p = std::get_if<msg::shoot_progress>(&m.body)) {
    req.state_field = "shoot:" + p->shoot_id;
    req.state_terminal = msg::is_terminal(p->status);
    req.state_rank = req.state_terminal ? -1 : p->processed_count;
    req.state_linger_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            self->state.cfg.shoot_linger)
                            .count();
  }
}

/// Finishes a v2 socket's resume once its replay (since, upto] was read:
/// WELCOME, the replay, then what arrived meanwhile; or, when the read
/// failed, WELCOME and a SNAPSHOT of now (which covers what arrived).
void finish_replay(hub_ptr self, const std::string& user, const caf::actor_addr& who,
                   const join_request& req, uint64_t upto, const stream_range* r) {
  auto* u = followed(self, user);
  auto* me = u ? socket_of(*u, who) : nullptr;
  if (!me || me->closing || !me->holding)
    return;
  auto& f = *u->follow;
  auto since = *req.since;
  bool whole = r && r->complete && r->epoch == req.epoch && f.epoch == req.epoch
               && r->messages.size() == upto - since;
  for (size_t k = 0; whole && k < r->messages.size(); ++k)
    whole = r->messages[k].seq == since + 1 + k;
  me->holding = false;
  auto held = std::move(me->held);
  if (!whole) {
    welcome(self, req, *u, *me, f.epoch, f.seq, false);
    return;
  }
  welcome(self, req, *u, *me, req.epoch, upto, true);
  ++self->state.stats.resumes_recovered;
  self->state.stats.replayed += r->messages.size();
  for (auto& m : r->messages)
    send_frame(self, *me, make_shared_frame(with_seq(m.frame, m.seq)));
  for (auto& h : held)
    send_frame(self, *me, h);
}

void log_publish_failure(hub_ptr self, const std::string& user, const caf::error& err) {
  auto& st = self->state;
  // One line per 1000 failures: a broker that is down fails every publish.
  if (st.stats.broker_errors++ % 1000 == 0)
    st.log->warn("user {}: publish refused, the broker failed: {} ({} failures so far)",
                 user, self->home_system().render(err), st.stats.broker_errors);
}

} // namespace

/// Starts a socket once the user's stream head is known: v1 hears of
/// itself; v2 gets WELCOME and its replay or a SNAPSHOT.
void cluster_start(hub_ptr self, const std::string& user, user_entry& u, device_socket& me) {
  std::shared_ptr<const join_request> req = std::move(me.start);
  auto& f = *u.follow;
  auto hello = device_frame(msg::server_type::device_connected, user, req->device,
                            me.connected_at);
  if (!me.v2) {
    send_frame(self, me, hello);
  } else if (req->epoch != f.epoch || !req->since || *req->since > f.seq
             || f.seq - *req->since > self->state.cfg.history.max_replay) {
    welcome(self, *req, u, me, f.epoch, f.seq, false);
  } else if (*req->since == f.seq) {
    welcome(self, *req, u, me, f.epoch, f.seq, true);
    ++self->state.stats.resumes_recovered;
  } else {
    me.holding = true;
    auto who = me.session.address();
    auto upto = f.seq;
    self
      ->request(broker(self), caf::infinite, read_atom::value, user,
                req->epoch, *req->since, upto)
      .then(
        [=](stream_range& r) { finish_replay(self, user, who, *req, upto, &r); },
        [=](caf::error&) {
          ++self->state.stats.broker_errors;
          finish_replay(self, user, who, *req, upto, nullptr);
        });
  }
  if (!device_present(u, req->device, &me)) // else the others know it already
    for (auto& s : u.sockets)
      if (&s != &me)
        send_frame(self, s, hello);
  cluster_announce(self, user); // other nodes track it per node
}

void cluster_joined(hub_ptr self, const std::string& user, user_entry& u,
                    device_socket& me) {
  if (!u.follow)
    cluster_follow(self, user, u, true);
  else if (u.follow->live)
    cluster_start(self, user, u, me);
  // else: started with the others when the head arrives
}

void cluster_left(hub_ptr self, std::map<std::string, user_entry>::iterator i) {
  auto user = i->first;
  if (i->second.sockets.empty() && i->second.follow) {
    self->send(broker(self), unfollow_atom::value, user, me_as_follower(self));
    i->second.follow.reset();
  }
  cluster_announce(self, user); // forgets the user once the broker knows
}

void cluster_publish(hub_ptr self, const std::string& user, const msg::server_message& m,
                     const std::string& data_json, std::string dedup_key,
                     std::function<void(const publish_receipt&)> done,
                     std::function<void(const caf::error&)> failed) {
  auto& st = self->state;
  publish_request req;
  req.msg.user = user;
  req.msg.origin = st.cfg.cluster.instance;
  req.msg.frame = encode_for(m, data_json, std::nullopt).str();
  req.numbered = msg::is_numbered(m.type);
  req.dedup_key = std::move(dedup_key);
  if (req.numbered) {
    state_key(self, m, req);
  } else if (auto* u = followed(self, user)) {
    // Not in the stream: this node's sockets have it at once; the broker
    // relays it to the other nodes (which skip their own).
    auto f = make_shared_frame(req.msg.frame);
    for (auto& s : u->sockets)
      send_frame(self, s, f);
  }
  self->request(broker(self), caf::infinite, publish_atom::value, std::move(req))
    .then(
      [=](const publish_receipt& r) {
        self->state.stats.duplicates += r.duplicate ? 1 : 0;
        if (done)
          done(r);
      },
      [=](caf::error& err) {
        log_publish_failure(self, user, err);
        if (failed)
          failed(err);
      });
}

void cluster_ack(hub_ptr self, const std::string& user, const std::string& id,
                 const publish_receipt& r, const transport_actor& to,
                 int64_t received_ns) {
  auto* u = followed(self, user);
  if (!u)
    return ack(self, id, r.seq, to, received_ns);
  auto& f = *u->follow;
  if (f.live && r.epoch != f.epoch)
    return cluster_reset(self, user, *u, "the broker numbers in another epoch");
  if (f.live && f.seq >= r.seq)
    return ack(self, id, r.seq, to, received_ns);
  f.acks.push_back({r.seq, r.epoch, id, to, received_ns});
}

caf::result<msg::user_state> cluster_snapshot(hub_ptr self, const std::string& user) {
  if (auto* u = followed(self, user); u && u->follow->live)
    return snapshot(self, user);
  auto rp = self->make_response_promise<msg::user_state>();
  self->request(broker(self), caf::infinite, head_atom::value, user)
    .then(
      [=](const stream_head& h) mutable {
        msg::user_state s;
        s.user_id = user;
        s.seq = h.top;
        for (auto& sf : h.state) {
          auto m = msg::decode_server(sf.frame);
          if (!m || !cluster_still_shown(self, sf))
            continue;
          if (auto* c = std::get_if<msg::credit_update>(&m->body))
            s.credits = *c;
          else if (auto* p = std::get_if<msg::shoot_progress>(&m->body))
            s.shoots.push_back(*p);
        }
        for (auto& d : h.devices) {
          msg::device_connection c;
          c.device_id = d.device;
          c.timestamp = d.connected_at;
          s.devices.push_back(std::move(c));
        }
        rp.deliver(std::move(s));
      },
      [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

std::string to_string(broker_errc x) {
  switch (x) {
    case broker_errc::unavailable: return "unavailable";
    case broker_errc::bad_reply: return "bad_reply";
  }
  return "unknown";
}

caf::error make_error(broker_errc x, std::string detail) {
  return caf::error{static_cast<uint8_t>(x), caf::atom("broker"),
                    caf::make_message(std::move(detail))};
}

std::string with_seq(const std::string& v1_frame, uint64_t seq) {
  // `seq` is the envelope's last field in both encoders (codec.hpp).
  if (v1_frame.size() < 2 || v1_frame.back() != '}')
    return v1_frame; // not an envelope: brokers refuse such frames
  auto out = v1_frame;
  out.pop_back(); // the envelope's '}'
  out += ",\"seq\":";
  out += std::to_string(seq);
  out += '}';
  return out;
}

} // namespace kullsync::server

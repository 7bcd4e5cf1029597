// A hub shard's sockets and publishes: a socket starts at a position it can
// trust (v2: WELCOME and the replay of what it missed, read from the broker
// while live frames for it are held, or a SNAPSHOT); a publish goes to the
// broker, which numbers it; a client message's ACK waits until its position
// was sent here.
#include <algorithm>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

device_socket* socket_of(user_entry& u, const caf::actor_addr& session) {
  for (auto& s : u.sockets)
    if (s.session.address() == session)
      return &s;
  return nullptr;
}

namespace {

/// What the user's state is made of, as SNAPSHOT and /state show it: the
/// frames the stream kept, decoded (only here, never per message).
msg::user_state state_of(hub_ptr self, const std::string& user,
                         const std::vector<state_frame>& frames, uint64_t seq) {
  msg::user_state s;
  s.user_id = user;
  s.seq = seq;
  for (auto& f : frames) {
    auto m = msg::decode_server(f.frame);
    if (!m) {
      self->state.log->warn("user {}: a state frame does not decode ({}): left out", user,
                            msg::to_string(m.error().code));
      continue;
    }
    if (auto* c = std::get_if<msg::credit_update>(&m->body))
      s.credits = *c;
    else if (auto* p = std::get_if<msg::shoot_progress>(&m->body))
      s.shoots.push_back(*p);
  }
  return s;
}

msg::user_state followed_state(hub_ptr self, const std::string& user, user_entry& u) {
  auto s = state_of(self, user, u.stream->state.shown(now_ms(self)),
                    u.stream->follower.seq());
  s.devices = devices_of(u);
  return s;
}

/// WELCOME for `me` at (epoch, seq), then a SNAPSHOT of what the node has
/// unless `recovered`.
void welcome(hub_ptr self, const std::string& user, const join_request& req, user_entry& u,
             device_socket& me, const std::string& epoch, uint64_t seq, bool recovered) {
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
  // A device with no position asked for none: not a resume that failed.
  ++(req.since ? self->state.stats.resumes_snapshot : self->state.stats.joins_fresh);
  auto s = followed_state(self, user, u);
  s.user_id.clear(); // the socket knows whose it is
  send_frame(self, me, control_frame(self, msg::server_type::snapshot, std::move(s)));
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
  auto& f = u->stream->follower;
  auto since = *req.since;
  bool whole = r && r->complete && r->epoch == req.epoch && f.epoch() == req.epoch
               && r->messages.size() == upto - since;
  for (size_t k = 0; whole && k < r->messages.size(); ++k)
    whole = r->messages[k]->seq == since + 1 + k;
  me->holding = false;
  auto held = std::move(me->held);
  if (!whole) {
    // The SNAPSHOT covers what was held: the position is the follower's,
    // which the held messages brought the socket's to.
    welcome(self, user, req, *u, *me, f.epoch(), f.seq(), false);
    me->position = f.seq();
  } else {
    welcome(self, user, req, *u, *me, req.epoch, upto, true);
    ++self->state.stats.resumes_recovered;
    self->state.stats.replayed += r->messages.size();
    for (auto& m : r->messages)
      send_frame(self, *me, m->frame);
    for (auto& h : held)
      send_frame(self, *me, h);
  }
  answer_join(self, who); // its first frame, WELCOME, is on its way
}

/// What of the user's state a numbered message replaces (state_update).
state_update state_of_message(hub_ptr self, const msg::server_message& m) {
  state_update u;
  u.at = m.timestamp;
  if (std::holds_alternative<msg::credit_update>(m.body)) {
    u.field = "credits";
  } else if (auto* p = std::get_if<msg::shoot_progress>(&m.body)) {
    u.field = "shoot:" + p->shoot_id;
    u.terminal = msg::is_terminal(p->status);
    u.rank = u.terminal ? -1 : p->processed_count;
    u.linger_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    self->state.cfg.shoot_linger)
                    .count();
  }
  return u;
}

/// The message's v1 text (`data_json` non-empty: relayed verbatim).
std::string v1_text(const msg::server_message& m, const std::string& data_json) {
  if (data_json.empty())
    return msg::encode(m);
  return msg::encode_envelope(m.type_name, data_json, m.timestamp,
                              m.device_id.value_or("server"), m.user_id.value_or(""));
}

void log_publish_failure(hub_ptr self, const caf::error& err) {
  auto& st = self->state;
  // One line per 1000 failures: a broker that is down fails every publish.
  if (st.stats.broker_errors++ % 1000 == 0)
    st.log->warn("a publish was refused, the broker failed: {} ({} failures so far)",
                 self->home_system().render(err), st.stats.broker_errors);
}

} // namespace

join_outcome join(hub_ptr self, const join_request& req, session_actor who,
                  link_actor socket) {
  auto& st = self->state;
  auto [entry, added] = st.users.try_emplace(req.user);
  auto& u = entry->second;
  if (added && st.counters)
    st.counters->users_now.fetch_add(1, std::memory_order_relaxed);
  if (u.sockets.size() >= st.cfg.max_sockets_per_user) {
    ++st.stats.rejected_sockets;
    st.log->warn("user {} has {} sockets already: refusing device {}", req.user,
                 u.sockets.size(), req.device);
    forget_if_done(self, req.user);
    return join_outcome::refused;
  }
  self->monitor(who);
  st.by_session[who.address()] = req.user;
  auto& me = u.sockets.emplace_back();
  me.device_id = req.device;
  me.session = std::move(who);
  me.socket = std::move(socket);
  me.connected_at = now_ms(self);
  me.v2 = req.v2;
  me.start = std::make_unique<join_request>(req);
  ++(req.v2 ? st.stats.v2_sockets : st.stats.v1_sockets);
  if (st.counters)
    st.counters->sockets_now.fetch_add(1, std::memory_order_relaxed);
  st.stats.users = st.users.size();
  if (!u.stream)
    follow(self, req.user, u, true); // starts the socket with the head
  else if (u.stream->follower.live())
    start_socket(self, req.user, u, me);
  // else: started with the others when the head arrives
  // A socket waiting for its head or its replay opens when WELCOME is sent.
  return me.start || me.holding ? join_outcome::waiting : join_outcome::started;
}

void start_socket(hub_ptr self, const std::string& user, user_entry& u, device_socket& me) {
  std::shared_ptr<const join_request> req = std::move(me.start);
  auto& f = u.stream->follower;
  auto hello = device_frame(msg::server_type::device_connected, user, req->device,
                            me.connected_at);
  if (!me.v2) {
    send_frame(self, me, hello); // the new device hears of itself first
  } else if (req->epoch != f.epoch() || !req->since || *req->since > f.seq()
             || f.seq() - *req->since > self->state.cfg.history.max_replay) {
    welcome(self, user, *req, u, me, f.epoch(), f.seq(), false);
    me.position = f.seq();
  } else if (*req->since == f.seq()) {
    welcome(self, user, *req, u, me, f.epoch(), f.seq(), true);
    me.position = f.seq();
    ++self->state.stats.resumes_recovered;
  } else {
    me.holding = true;
    me.position = f.seq(); // the replay's end: what is held comes after it
    auto who = me.session.address();
    auto upto = f.seq();
    self->state.broker->read(user, req->epoch, *req->since, upto,
                             [self, user, who, req, upto](caf::expected<stream_range> r) {
                               if (!r)
                                 ++self->state.stats.broker_errors;
                               finish_replay(self, user, who, *req, upto, r ? &*r : nullptr);
                             });
  }
  if (!device_present(u, req->device, &me)) // else the others know it already
    send_all(self, u, hello, &me);
  if (!self->state.draining) // a socket joining a stopping node is closed at once
    announce(self, user); // the broker lists it for the other nodes
  // Its handshake completes now, or, for a replay still being read, once
  // WELCOME is sent: else a frame it answers itself (PONG, ACK, NACK) could
  // come first.
  if (!me.holding)
    answer_join(self, me.session.address());
}

void leave(hub_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto entry = st.by_session.find(who);
  if (entry == st.by_session.end())
    return;
  auto user = std::move(entry->second);
  st.by_session.erase(entry);
  st.joining.erase(who); // its session is gone
  auto i = st.users.find(user);
  if (i == st.users.end())
    return;
  auto& u = i->second;
  auto j = std::find_if(u.sockets.begin(), u.sockets.end(),
                        [&](auto& s) { return s.session.address() == who; });
  if (j == u.sockets.end())
    return;
  auto device = std::move(j->device_id);
  --(j->v2 ? st.stats.v2_sockets : st.stats.v1_sockets);
  u.sockets.erase(j);
  if (st.counters)
    st.counters->sockets_now.fetch_sub(1, std::memory_order_relaxed);
  if (!device_present(u, device, nullptr))
    send_all(self, u, device_frame(msg::server_type::device_disconnected, user, device,
                                   now_ms(self)));
  if (u.sockets.empty() && u.stream)
    drop_stream(self, user, u);
  announce(self, user); // forgets the user once the broker knows
  check_drained(self);
}

void publish(hub_ptr self, const std::string& user, const msg::server_message& m,
             const std::string& data_json, std::string dedup_key,
             std::function<void(const publish_receipt&)> done,
             std::function<void(const caf::error&)> failed) {
  auto& st = self->state;
  publish_request req;
  req.user = user;
  req.origin = st.cfg.cluster.instance;
  req.frame = v1_text(m, data_json);
  req.numbered = msg::is_numbered(m.type);
  req.dedup_key = std::move(dedup_key);
  req.now = now_ms(self);
  if (req.numbered) {
    req.state = state_of_message(self, m);
  } else if (!req.dedup_key.empty()) {
    // Not in the stream, but with an Idempotency-Key: a retry must not reach
    // the sockets again, so this node's have it once the broker says it is
    // new (the broker relays it to the other nodes likewise). Of unknown
    // outcome, it may have been relayed already, and its retry will be a
    // duplicate: this node's sockets have it now.
    auto frame = make_shared_frame(req.frame);
    done = [self, user, frame, done = std::move(done)](const publish_receipt& r) {
      if (!r.duplicate)
        if (auto* u = followed(self, user))
          send_all(self, *u, frame);
      if (done)
        done(r);
    };
    failed = [self, user, frame, failed = std::move(failed)](const caf::error& e) {
      if (outcome_unknown(e))
        if (auto* u = followed(self, user))
          send_all(self, *u, frame);
      if (failed)
        failed(e);
    };
  } else if (auto* u = followed(self, user)) {
    // Not in the stream: this node's sockets have it at once; the broker
    // relays it to the other nodes (which skip their own).
    send_all(self, *u, make_shared_frame(req.frame));
  }
  if (!done && !failed) {
    // Nobody waits for it (a relayed message without an id): a callback that
    // holds only `self` needs no allocation.
    st.broker->publish(std::move(req), [self](caf::expected<publish_receipt> r) {
      if (!r)
        log_publish_failure(self, r.error());
      else
        self->state.stats.duplicates += r->duplicate ? 1 : 0;
    });
    return;
  }
  st.broker->publish(std::move(req), [self, done = std::move(done),
                                      failed = std::move(failed)](
                                       caf::expected<publish_receipt> r) {
    if (!r) {
      log_publish_failure(self, r.error());
      if (failed)
        failed(r.error());
      return;
    }
    self->state.stats.duplicates += r->duplicate ? 1 : 0;
    if (done)
      done(*r);
  });
}

void ack_when_applied(hub_ptr self, const std::string& user, pending_ack a,
                      const publish_receipt& r) {
  auto& st = self->state;
  auto ticket = ++st.next_ticket;
  a.seq = r.seq;
  st.acks.emplace(ticket, std::move(a));
  auto* u = followed(self, user);
  if (!u)
    return send_ack(self, ticket);
  carry_out(self, user, *u, u->stream->follower.on_receipt(r, ticket));
}

void send_ack(hub_ptr self, uint64_t ticket) {
  auto& st = self->state;
  auto i = st.acks.find(ticket);
  if (i == st.acks.end())
    return;
  auto& a = i->second;
  self->send(a.to, send_atom::value,
             control_frame(self, msg::server_type::ack, msg::ack{a.id, a.seq}));
  if (auto& c = st.counters) {
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    c->ack_latency.observe(
      static_cast<double>(std::chrono::nanoseconds{now}.count() - a.received_ns) / 1e9);
  }
  st.acks.erase(i);
}

void refuse_unstored(hub_ptr self, const std::string& id, const link_actor& to,
                     const caf::error& why) {
  if (outcome_unknown(why)) {
    // Neither ACK nor NACK would be true. The client resends what is not
    // acknowledged, with its ids, once it reconnects; the stream answers an
    // id it already applied with its original position.
    self->send(to, close_atom::value, close_code::try_again_later,
               std::string{"the outcome of a message is unknown: resend it"});
    return;
  }
  msg::nack n{id, msg::nack_code::unavailable, "the stream is unavailable"};
  self->send(to, send_atom::value, control_frame(self, msg::server_type::nack, std::move(n)));
}

caf::result<msg::user_state> user_snapshot(hub_ptr self, const std::string& user) {
  if (auto* u = followed(self, user); u && u->stream->follower.live())
    return followed_state(self, user, *u);
  auto rp = self->make_response_promise<msg::user_state>();
  self->state.broker->head(user, [self, user, rp](caf::expected<stream_head> h) mutable {
    if (!h) {
      rp.deliver(std::move(h.error()));
      return;
    }
    std::vector<state_frame> shown;
    auto now = now_ms(self);
    for (auto& f : h->state)
      if (f.until == 0 || f.until > now)
        shown.push_back(f);
    auto s = state_of(self, user, shown, h->top);
    for (auto& d : h->devices) {
      msg::device_connection c;
      c.device_id = d.device;
      c.timestamp = d.connected_at;
      s.devices.push_back(std::move(c));
    }
    rp.deliver(std::move(s));
  });
  return rp;
}

} // namespace kullsync::server

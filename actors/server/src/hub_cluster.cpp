// A hub shard in a cluster: it follows, through the broker, the streams of
// the users with a device on this node, applies each stream strictly in
// order (a gap is read back from the broker before anything after it), and
// starts each socket at a position it can trust. The broker numbers; this
// node never does.
#include <limits>
#include <string_view>

#include <caf/actor_system.hpp>
#include <caf/make_message.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

namespace {

const broker_actor& broker(hub_ptr self) {
  return self->state.cfg.cluster.broker;
}

stream_follower_actor me_as_follower(hub_ptr self) {
  return caf::actor_cast<stream_follower_actor>(self);
}

/// The user's entry if this node still follows its stream (answers to a
/// request may come after the last device left).
user_entry* followed(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  return i != self->state.users.end() && i->second.follow ? &i->second : nullptr;
}

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

/// A state frame of a stream head, unless it is a finished shoot whose
/// linger is over (the broker drops those lazily).
bool still_shown(hub_ptr self, const state_frame& s) {
  return s.until == 0 || s.until > now_ms(self);
}

/// Remembers what a stream frame changes; only credit updates and shoot
/// progress do, so only those are decoded.
void remember_frame(hub_ptr self, user_entry& u, const std::string& user,
                    std::string_view frame) {
  constexpr std::string_view credit = R"({"type":"CREDIT_UPDATE")";
  constexpr std::string_view shoot = R"({"type":"SHOOT_PROGRESS")";
  if (frame.substr(0, credit.size()) != credit && frame.substr(0, shoot.size()) != shoot)
    return;
  auto m = msg::decode_server(frame);
  if (!m) {
    self->state.log->warn("user {}: a stream frame from the broker does not decode "
                          "({}): not remembered", user, msg::to_string(m.error().code));
    return;
  }
  remember(self, u, user, *m);
}

void flush_acks(hub_ptr self, stream_follow& f) {
  auto& acks = f.acks;
  // Those of another epoch never come due: the devices resend them.
  acks.erase(std::remove_if(acks.begin(), acks.end(),
                            [&](auto& a) { return a.epoch != f.epoch; }),
             acks.end());
  auto i = std::stable_partition(acks.begin(), acks.end(),
                                 [&](auto& a) { return a.seq > f.seq; });
  for (auto j = i; j != acks.end(); ++j)
    ack(self, j->id, j->seq, j->to, j->received_ns);
  acks.erase(i, acks.end());
}

/// Applies the next message of the stream: remembered, then sent to every
/// socket of the user (its v2 frame is the v1 one with its position).
void apply(hub_ptr self, const std::string& user, user_entry& u, const stream_message& m) {
  auto& f = *u.follow;
  f.seq = m.seq;
  remember_frame(self, u, user, m.frame);
  auto v2 = make_shared_frame(with_seq(m.frame, m.seq));
  shared_frame v1;
  for (auto& s : u.sockets) {
    if (s.v2) {
      send_frame(self, s, v2);
    } else {
      if (!v1.text)
        v1 = make_shared_frame(m.frame);
      send_frame(self, s, v1);
    }
  }
  flush_acks(self, f);
}

void follow(hub_ptr self, const std::string& user, user_entry& u, bool fresh);
void follow_failed(hub_ptr self, const std::string& user, user_entry& u,
                   const caf::error& err, bool fresh);
void fill(hub_ptr self, const std::string& user, user_entry& u, uint64_t upto);

/// The node cannot keep the user's stream continuous for its v2 sockets
/// (history lost, another epoch): they are closed with 4009 and resume,
/// and the node follows the stream afresh.
void reset(hub_ptr self, const std::string& user, user_entry& u, const char* why) {
  self->state.log->warn("user {}: {}: its v2 devices resume", user, why);
  for (auto& s : u.sockets)
    if (s.v2 && !s.start && !s.closing) {
      s.closing = true;
      self->send(s.session, close_atom::value, close_code::stream_interrupted,
                 std::string{"stream interrupted"});
    }
  u.follow->acks.clear(); // the devices resend: the broker answers the ids
  ++self->state.stats.stream_resets;
  follow(self, user, u, true);
}

/// Applies what waits in `ahead` as far as it is consecutive; reads the
/// gap when it is not.
void drain(hub_ptr self, const std::string& user, user_entry& u) {
  auto& f = *u.follow;
  while (f.live && !f.filling && !f.ahead.empty()) {
    auto i = f.ahead.begin();
    if (i->second.epoch != f.epoch)
      return reset(self, user, u, "the stream's epoch changed");
    if (i->first <= f.seq) {
      f.ahead.erase(i);
    } else if (i->first > f.seq + 1) {
      return fill(self, user, u, i->first - 1);
    } else {
      auto m = std::move(i->second);
      f.ahead.erase(i);
      apply(self, user, u, m);
    }
  }
}

/// Reads (seq, upto] of the stream and applies it.
void fill(hub_ptr self, const std::string& user, user_entry& u, uint64_t upto) {
  auto& f = *u.follow;
  f.filling = true;
  auto gen = f.generation;
  self
    ->request(broker(self), caf::infinite, read_atom::value, user,
              f.epoch, f.seq, upto)
    .then(
      [=](stream_range& r) {
        auto* u = followed(self, user);
        if (!u || u->follow->generation != gen)
          return;
        auto& f = *u->follow;
        f.filling = false;
        if (!r.complete || r.epoch != f.epoch)
          return reset(self, user, *u, "the stream no longer holds what this node missed");
        for (auto& m : r.messages) {
          if (m.seq <= f.seq)
            continue;
          if (m.seq != f.seq + 1)
            return reset(self, user, *u, "the broker's read has a gap");
          apply(self, user, *u, m);
          ++self->state.stats.gap_messages;
        }
        drain(self, user, *u);
      },
      [=](caf::error& err) {
        auto* u = followed(self, user);
        if (!u || u->follow->generation != gen)
          return;
        // The next message or position check reads again.
        u->follow->filling = false;
        ++self->state.stats.broker_errors;
        self->state.log->debug("user {}: reading the stream failed: {}", user,
                               self->home_system().render(err));
      });
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

/// Starts a socket once the user's stream head is known: v1 hears of
/// itself; v2 gets WELCOME and its replay or a SNAPSHOT.
void start(hub_ptr self, const std::string& user, user_entry& u, device_socket& me) {
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

/// The head arrived: a fresh follow (or another epoch) replaces what the
/// node remembers of the user; a resync keeps it and reads what it missed.
void on_head(hub_ptr self, const std::string& user, user_entry& u, stream_head& h,
             bool fresh) {
  auto& f = *u.follow;
  f.live = true;
  bool replace = fresh || h.epoch != f.epoch;
  if (replace) {
    if (!fresh)
      for (auto& s : u.sockets)
        if (s.v2 && !s.start && !s.closing) {
          s.closing = true;
          self->send(s.session, close_atom::value, close_code::stream_interrupted,
                     std::string{"stream interrupted"});
        }
    f.epoch = std::move(h.epoch);
    f.seq = h.top;
    u.credits.reset();
    u.shoots.clear();
    for (auto& s : h.state)
      if (still_shown(self, s))
        remember_frame(self, u, user, s.frame);
    for (auto i = f.ahead.begin(); i != f.ahead.end();)
      i = i->first <= f.seq || i->second.epoch != f.epoch ? f.ahead.erase(i) : std::next(i);
  }
  // Presence is not in the stream: the broker's list is the truth.
  cluster_remote_devices(self, user, u, h.devices);
  for (auto& s : u.sockets)
    if (s.start)
      start(self, user, u, s);
  if (!replace && h.top > f.seq)
    return fill(self, user, u, h.top);
  drain(self, user, u);
}

/// Subscribes (again) to the user's stream; answers to earlier follows are
/// ignored from now on.
void follow(hub_ptr self, const std::string& user, user_entry& u, bool fresh) {
  if (!u.follow)
    u.follow = std::make_unique<stream_follow>();
  auto& f = *u.follow;
  f.live = false;
  f.filling = false;
  f.generation = ++self->state.generations;
  if (fresh)
    f.ahead.clear();
  auto gen = f.generation;
  self
    ->request(broker(self), caf::infinite, follow_atom::value, user,
              me_as_follower(self))
    .then(
      [=](stream_head& h) {
        if (auto* u = followed(self, user); u && u->follow->generation == gen)
          on_head(self, user, *u, h, fresh);
      },
      [=](caf::error& err) {
        if (auto* u = followed(self, user); u && u->follow->generation == gen)
          follow_failed(self, user, *u, err, fresh);
      });
}

/// The broker did not give the head. Sockets waiting for it cannot start:
/// closed with 1013 (the client comes back later). Sockets already going
/// keep going on what the node has, and the follow is retried.
void follow_failed(hub_ptr self, const std::string& user, user_entry& u,
                   const caf::error& err, bool fresh) {
  ++self->state.stats.broker_errors;
  size_t waiting = 0, going = 0;
  for (auto& s : u.sockets) {
    if (s.closing)
      continue;
    if (s.start) {
      ++waiting;
      s.closing = true;
      self->send(s.session, close_atom::value, close_code::try_again_later,
                 std::string{"stream unavailable"});
    } else {
      ++going;
    }
  }
  self->state.log->warn("user {}: following the stream failed ({}): {} new sockets "
                        "closed with 1013, {} kept{}", user,
                        self->home_system().render(err), waiting, going,
                        going ? ", retrying in 1 s" : "");
  if (going == 0) {
    u.follow.reset(); // the next socket follows afresh
    return;
  }
  self->delayed_send(self, std::chrono::seconds{1}, refollow_atom::value, user,
                     u.follow->generation, fresh);
}

void log_publish_failure(hub_ptr self, const std::string& user, const caf::error& err) {
  auto& st = self->state;
  // One line per 1000 failures: a broker that is down fails every publish.
  if (st.stats.broker_errors++ % 1000 == 0)
    st.log->warn("user {}: publish refused, the broker failed: {} ({} failures so far)",
                 user, self->home_system().render(err), st.stats.broker_errors);
}

/// A position check: the broker's head against what this node applied (a
/// lost last message shows only here), and the other nodes' devices.
void check(hub_ptr self, const std::string& user, uint64_t gen) {
  self->request(broker(self), caf::infinite, head_atom::value, user)
    .then(
      [=](stream_head& h) {
        auto* u = followed(self, user);
        if (!u || u->follow->generation != gen || !u->follow->live)
          return;
        auto& f = *u->follow;
        cluster_remote_devices(self, user, *u, h.devices);
        if (h.epoch != f.epoch)
          return reset(self, user, *u, "the stream's epoch changed");
        if (h.top > f.seq && !f.filling)
          fill(self, user, *u, h.top);
      },
      [=](caf::error&) { ++self->state.stats.broker_errors; });
}

} // namespace

void cluster_joined(hub_ptr self, const std::string& user, user_entry& u,
                    device_socket& me) {
  if (!u.follow)
    follow(self, user, u, true);
  else if (u.follow->live)
    start(self, user, u, me);
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
    return reset(self, user, *u, "the broker numbers in another epoch");
  if (f.live && f.seq >= r.seq)
    return ack(self, id, r.seq, to, received_ns);
  f.acks.push_back({r.seq, r.epoch, id, to, received_ns});
}

void cluster_deliver(hub_ptr self, stream_message& m) {
  auto* u = followed(self, m.user);
  if (!u)
    return; // unfollowed since
  auto& f = *u->follow;
  if (m.seq == 0) {
    if (m.origin != self->state.cfg.cluster.instance
        && cluster_track_presence(self, *u, m.origin, m.frame)) {
      auto frame = make_shared_frame(std::move(m.frame));
      for (auto& s : u->sockets)
        send_frame(self, s, frame);
    }
    return;
  }
  if (!f.live || f.filling) {
    f.ahead.emplace(m.seq, std::move(m));
    return;
  }
  if (m.epoch != f.epoch)
    return reset(self, m.user, *u, "the stream's epoch changed");
  if (m.seq <= f.seq)
    return; // delivered twice
  auto user = m.user;
  f.ahead.emplace(m.seq, std::move(m));
  drain(self, user, *u);
}

void cluster_resync(hub_ptr self) {
  auto& st = self->state;
  st.log->info("the broker resubscribed: following {} users again", st.users.size());
  for (auto& [user, u] : st.users)
    if (u.follow)
      follow(self, user, u, false);
}

void cluster_refollow(hub_ptr self, const std::string& user, uint64_t generation,
                      bool fresh) {
  if (auto* u = followed(self, user); u && u->follow->generation == generation)
    follow(self, user, *u, fresh);
}

void cluster_check(hub_ptr self, int64_t now) {
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(
                  self->state.cfg.cluster.position_check)
                  .count();
  for (auto& [user, u] : self->state.users) {
    auto* f = u.follow.get();
    if (!f || !f->live || f->filling || now - f->checked_ms < period)
      continue;
    f->checked_ms = now;
    check(self, user, f->generation);
  }
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
          if (!m || !still_shown(self, sf))
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

uint64_t cluster_top(hub_ptr self, const std::string& user) {
  auto* u = followed(self, user);
  return u ? u->follow->seq : 0;
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

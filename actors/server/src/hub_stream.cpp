// A hub shard in a cluster, following a user's stream: what the broker
// delivers is applied strictly in order (one that arrives early waits while
// the gap is read back), the head replaces what the node remembers when the
// stream is new to it or changed epoch, and a stream the node can no longer
// keep continuous is followed afresh with the user's v2 sockets closed
// (4009). hub_cluster.cpp starts the sockets and publishes.
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

namespace {

void fill(hub_ptr self, const std::string& user, user_entry& u, uint64_t upto);
void follow_failed(hub_ptr self, const std::string& user, user_entry& u,
                   const caf::error& err, bool fresh);

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

/// Applies what waits in `ahead` as far as it is consecutive; reads the
/// gap when it is not.
void drain(hub_ptr self, const std::string& user, user_entry& u) {
  auto& f = *u.follow;
  while (f.live && !f.filling && !f.ahead.empty()) {
    auto i = f.ahead.begin();
    if (i->second.epoch != f.epoch)
      return cluster_reset(self, user, u, "the stream's epoch changed");
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
          return cluster_reset(self, user, *u, "the stream no longer holds what this node missed");
        for (auto& m : r.messages) {
          if (m.seq <= f.seq)
            continue;
          if (m.seq != f.seq + 1)
            return cluster_reset(self, user, *u, "the broker's read has a gap");
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
      if (cluster_still_shown(self, s))
        remember_frame(self, u, user, s.frame);
    for (auto i = f.ahead.begin(); i != f.ahead.end();)
      i = i->first <= f.seq || i->second.epoch != f.epoch ? f.ahead.erase(i) : std::next(i);
  }
  // Presence is not in the stream: the broker's list is the truth.
  cluster_remote_devices(self, user, u, h.devices);
  for (auto& s : u.sockets)
    if (s.start)
      cluster_start(self, user, u, s);
  if (!replace && h.top > f.seq)
    return fill(self, user, u, h.top);
  drain(self, user, u);
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
          return cluster_reset(self, user, *u, "the stream's epoch changed");
        if (h.top > f.seq && !f.filling)
          fill(self, user, *u, h.top);
      },
      [=](caf::error&) { ++self->state.stats.broker_errors; });
}

} // namespace

/// The node cannot keep the user's stream continuous for its v2 sockets
/// (history lost, another epoch): they are closed with 4009 and resume,
/// and the node follows the stream afresh.
void cluster_reset(hub_ptr self, const std::string& user, user_entry& u, const char* why) {
  self->state.log->warn("user {}: {}: its v2 devices resume", user, why);
  for (auto& s : u.sockets)
    if (s.v2 && !s.start && !s.closing) {
      s.closing = true;
      self->send(s.session, close_atom::value, close_code::stream_interrupted,
                 std::string{"stream interrupted"});
    }
  u.follow->acks.clear(); // the devices resend: the broker answers the ids
  ++self->state.stats.stream_resets;
  cluster_follow(self, user, u, true);
}

/// Subscribes (again) to the user's stream; answers to earlier follows are
/// ignored from now on.
void cluster_follow(hub_ptr self, const std::string& user, user_entry& u, bool fresh) {
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

/// A state frame of a stream head, unless it is a finished shoot whose
/// linger is over (the broker drops those lazily).
bool cluster_still_shown(hub_ptr self, const state_frame& s) {
  return s.until == 0 || s.until > now_ms(self);
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
    return cluster_reset(self, m.user, *u, "the stream's epoch changed");
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
      cluster_follow(self, user, u, false);
}

void cluster_refollow(hub_ptr self, const std::string& user, uint64_t generation,
                      bool fresh) {
  if (auto* u = followed(self, user); u && u->follow->generation == generation)
    cluster_follow(self, user, *u, fresh);
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

uint64_t cluster_top(hub_ptr self, const std::string& user) {
  auto* u = followed(self, user);
  return u ? u->follow->seq : 0;
}

} // namespace kullsync::server

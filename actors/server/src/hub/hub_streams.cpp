// A hub shard following its users' streams: what the broker delivers goes
// through each user's stream_follower, which keeps it in order (reading
// gaps back) and says what to do; this file does it. The head replaces what
// the node has of a user when the stream is new here or changed epoch, and a
// stream the node can no longer keep continuous is followed afresh with the
// user's v2 sockets closed (4009).
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"

namespace kullsync::server {

namespace {

void close_started_v2(hub_ptr self, user_entry& u) {
  for (auto& s : u.sockets)
    if (s.v2 && !s.start && !s.closing)
      close_socket(self, s, close_code::stream_interrupted, "stream interrupted");
}

/// Whether `m` goes to v2 socket `s` (take_position): a refusal is a
/// fault of this node, logged (one line per 1000: a systematic one would
/// log per socket and message) and counted; a gap closes the socket (4009:
/// the device resumes).
bool next_for(hub_ptr self, device_socket& s, const stream_message& m) {
  auto verdict = take_position(s, m.seq);
  if (verdict == position_verdict::send || verdict == position_verdict::skip)
    return verdict == position_verdict::send;
  auto& st = self->state;
  bool gap = verdict == position_verdict::gap;
  if (st.stats.order_faults++ % 1000 == 0)
    st.log->error("user {} device {}: position {} is not the next after {}: {} ({} so far)",
                  m.user(), s.device_id, m.seq, s.position,
                  gap ? "closed to resume" : "not sent again", st.stats.order_faults);
  if (gap)
    close_socket(self, s, close_code::stream_interrupted, "stream interrupted");
  return false;
}

/// The next message of the stream: its state change copied, then sent to
/// every socket of the user (v2 as it is, v1 without its position).
void apply(hub_ptr self, user_entry& u, const message_ptr& m) {
  auto& fs = *u.stream;
  auto before = fs.state.bytes();
  fs.state.mirror(m->state, m->frame, m->seq);
  self->state.stats.state_bytes += fs.state.bytes() - before;
  shared_frame v1;
  for (auto& s : u.sockets) {
    if (s.v2) {
      if (next_for(self, s, *m))
        send_frame(self, s, m->frame);
    } else {
      if (!v1)
        v1 = v1_frame(*m);
      send_frame(self, s, v1);
    }
  }
}

void fill(hub_ptr self, const std::string& user, const std::string& epoch,
          stream_follower::effects::range r) {
  self->state.broker->read(
    user, epoch, r.since, r.upto,
    [self, user, gen = r.generation](caf::expected<stream_range> got) {
      auto* u = followed(self, user);
      if (!u)
        return;
      auto& f = u->stream->follower;
      if (!got) {
        if (gen == f.generation()) {
          // What waits behind the gap is held until a read succeeds (the
          // next message or position check asks again): worth seeing, once
          // per 1000 at most (a broker that is out fails every read).
          auto n = ++self->state.stats.broker_errors;
          if (n % 1000 == 1)
            self->state.log->warn("user {}: reading the stream back failed: {} ({} broker "
                                  "errors so far)", user,
                                  self->home_system().render(got.error()), n);
        }
        f.on_read_failed(gen);
        return;
      }
      auto fx = f.on_range(gen, *got);
      self->state.stats.gap_messages += fx.apply.size();
      carry_out(self, user, *u, std::move(fx));
    });
}

/// The stream went on in another epoch (Redis emptied, or another
/// mastership) under v1 sockets, which know no positions: v2 sockets resume
/// (4009), but a v1 socket would miss what the new epoch holds up to its
/// head. Its frames are held while that is read (from the oldest position
/// the epoch holds: 1 after Redis was emptied, past the old top after a new
/// mastership), and sent before them; if the read fails, they go on from
/// the head (logged).
void catch_up_v1(hub_ptr self, const std::string& user, user_entry& u, const stream_head& h) {
  auto& st = self->state;
  if (h.first == 0 || h.top < h.first)
    return; // the new epoch holds nothing yet: nothing was missed
  auto since = h.first - 1;
  std::vector<caf::actor_addr> v1;
  for (auto& s : u.sockets)
    if (!s.v2 && !s.start && !s.closing && !s.holding) {
      s.holding = true;
      v1.push_back(s.session.address());
    }
  if (v1.empty())
    return;
  auto release = [self, user, v1, since, top = h.top](const stream_range* r) {
    auto* u = followed(self, user);
    if (!u)
      return;
    bool whole = r && r->complete && r->messages.size() == top - since;
    for (size_t k = 0; whole && k < r->messages.size(); ++k)
      whole = r->messages[k]->seq == since + 1 + k;
    std::vector<shared_frame> missed; // built once for every v1 socket
    if (whole)
      for (auto& m : r->messages)
        missed.push_back(v1_frame(*m));
    else
      self->state.log->warn("user {}: {} v1 devices miss positions {}-{} of the stream's new "
                            "epoch (not read back)", user, v1.size(), since + 1, top);
    for (auto& who : v1) {
      auto* s = socket_of(*u, who);
      if (!s || !s->holding)
        continue;
      s->holding = false;
      auto held = std::move(s->held);
      for (auto& f : missed)
        send_frame(self, *s, f);
      for (auto& f : held)
        send_frame(self, *s, f);
    }
  };
  if (h.top - since > st.cfg.history.max_replay)
    return release(nullptr);
  st.broker->read(user, h.epoch, since, h.top,
                  [self, release](caf::expected<stream_range> r) {
                    if (!r)
                      ++self->state.stats.broker_errors;
                    release(r ? &*r : nullptr);
                  });
}

/// The head arrived: a fresh follow (or another epoch) replaces what the
/// node has of the user; a resync keeps it and reads what it missed.
void on_head(hub_ptr self, const std::string& user, user_entry& u, uint64_t gen,
             const stream_head& h, bool fresh) {
  auto& fs = *u.stream;
  bool replaced = false;
  auto before = fs.follower.epoch();
  auto fx = fs.follower.on_head(gen, h, fresh, &replaced);
  if (gen != fs.follower.generation())
    return;
  if (replaced && !before.empty() && before != h.epoch)
    catch_up_v1(self, user, u, h);
  if (replaced) {
    if (!fresh)
      close_started_v2(self, u);
    auto before = fs.state.bytes();
    fs.state.clear();
    for (auto& s : h.state)
      fs.state.mirror(s);
    self->state.stats.state_bytes += fs.state.bytes() - before;
  }
  // Presence is not in the stream: the broker's list is the truth.
  remote_devices(self, user, u, h.devices, h.devices_complete);
  // What came ahead of the head is applied first, and only then do waiting
  // sockets start: at the position that includes it, with its state (a
  // socket started first would be sent it again after its SNAPSHOT).
  carry_out(self, user, u, std::move(fx));
  auto& f = fs.follower;
  if (gen != f.generation() || !f.live())
    return; // reset: they start with the next head
  for (auto& s : u.sockets)
    if (s.start)
      start_socket(self, user, u, s);
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
      close_socket(self, s, close_code::try_again_later, "stream unavailable");
    } else {
      ++going;
    }
  }
  self->state.log->warn("user {}: following the stream failed ({}): {} new sockets "
                        "closed with 1013, {} kept{}", user,
                        self->home_system().render(err), waiting, going,
                        going ? ", retrying in 1 s" : "");
  if (going == 0)
    return drop_stream(self, user, u); // the next socket follows afresh
  self->delayed_send(self, std::chrono::seconds{1}, refollow_atom::value, user,
                     u.stream->follower.generation(), fresh);
}

} // namespace

void carry_out(hub_ptr self, const std::string& user, user_entry& u,
               stream_follower::effects fx) {
  auto& st = self->state;
  for (auto t : u.stream->follower.take_dropped_acks())
    st.acks.erase(t);
  if (fx.reset)
    return reset_stream(self, user, u, fx.reset);
  for (auto& m : fx.apply)
    apply(self, u, m);
  for (auto t : fx.acks)
    send_ack(self, t);
  if (fx.read)
    fill(self, user, u.stream->follower.epoch(), *fx.read);
}

void drop_stream(hub_ptr self, const std::string& user, user_entry& u) {
  auto& st = self->state;
  // ACKs still waiting for their position have no sender left to answer
  // (the device resends its id elsewhere and the broker answers it).
  for (auto t : u.stream->follower.take_all_acks())
    st.acks.erase(t);
  st.stats.state_bytes -= u.stream->state.bytes();
  u.stream.reset();
  st.broker->unfollow(user);
}

void reset_stream(hub_ptr self, const std::string& user, user_entry& u, const char* why) {
  self->state.log->warn("user {}: {}: its v2 devices resume", user, why);
  close_started_v2(self, u);
  for (auto t : u.stream->follower.take_dropped_acks())
    self->state.acks.erase(t); // the devices resend: the broker answers the ids
  ++self->state.stats.stream_resets;
  follow(self, user, u, true);
}

void follow(hub_ptr self, const std::string& user, user_entry& u, bool fresh) {
  auto& cfg = self->state.cfg;
  if (!u.stream)
    u.stream = std::make_unique<followed_stream>(cfg.state.shoots_per_user,
                                                 cfg.state.shoot_idle_ms);
  auto gen = ++self->state.generations;
  u.stream->follower.follow(fresh, gen);
  self->state.broker->follow(user, [self, user, gen, fresh](caf::expected<stream_head> h) {
    auto* u = followed(self, user);
    if (!u || u->stream->follower.generation() != gen)
      return;
    if (h)
      on_head(self, user, *u, gen, *h, fresh);
    else
      follow_failed(self, user, *u, h.error(), fresh);
  });
}

void on_message(hub_ptr self, const message_ptr& m) {
  auto* u = followed(self, m->user());
  if (!u)
    return; // unfollowed since
  if (m->control)
    return carry_out_order(self, *u, *m);
  if (m->seq == 0) {
    if (m->origin != self->state.cfg.cluster.instance)
      remote_presence(self, *u, *m);
    return;
  }
  carry_out(self, m->user(), *u, u->stream->follower.on_message(m));
}

void resync(hub_ptr self) {
  auto& st = self->state;
  st.log->info("the broker resubscribed: following {} users again", st.users.size());
  std::vector<std::string> users;
  for (auto& [user, u] : st.users)
    if (u.stream)
      users.push_back(user);
  for (auto& user : users)
    if (auto* u = followed(self, user))
      follow(self, user, *u, false);
}

void refollow(hub_ptr self, const std::string& user, uint64_t generation, bool fresh) {
  if (auto* u = followed(self, user); u && u->stream->follower.generation() == generation)
    follow(self, user, *u, fresh);
}

void check_positions(hub_ptr self, int64_t now) {
  auto& st = self->state;
  if (!st.broker->may_lose())
    return; // nothing is lost on the way: nothing to check
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(
                  st.cfg.cluster.position_check)
                  .count();
  for (auto& [user, u] : st.users) {
    if (!u.stream || !u.stream->follower.check_due(now, period))
      continue;
    auto gen = u.stream->follower.generation();
    st.broker->head(user, [self, user = user, gen](caf::expected<stream_head> h) {
      if (!h) {
        ++self->state.stats.broker_errors;
        return;
      }
      auto* u = followed(self, user);
      if (!u || u->stream->follower.generation() != gen || !u->stream->follower.live())
        return;
      remote_devices(self, user, *u, h->devices, h->devices_complete);
      carry_out(self, user, *u, u->stream->follower.on_check(gen, *h));
    });
  }
}

} // namespace kullsync::server

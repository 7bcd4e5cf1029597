// The Redis broker's actor: requests of the hub shards become script calls
// on the user's instance; each instance has a command connection and a
// subscriber connection, both hiredis on the io thread (redis_connection),
// which report back by message. See redis_broker.hpp.
#include "kullsync/broker/redis_broker.hpp"

#include "broker_clock.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "kullsync/transports/io_thread.hpp"
#include "redis_codec.hpp"
#include "redis_connection.hpp"
#include "redis_link.hpp"
#include "redis_scripts.hpp"

namespace kullsync::broker {

void became_ready(broker_ptr self, shard_link& s);

namespace net = boost::asio;
using namespace server;

namespace {

caf::error unavailable(const std::string& why) {
  return make_error(broker_errc::unavailable, why);
}

std::string new_epoch(broker_ptr self) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(self->state.rng()));
  return buf;
}

shard_link& shard_for(broker_ptr self, const std::string& user) {
  auto& shards = self->state.shards;
  return shards[shard_of(user, static_cast<uint32_t>(shards.size()))];
}

/// The command that runs script `which` with `c`'s keys and arguments: by
/// its digest, or (`by_sha` false) its text.
std::vector<std::string> script_argv(broker_ptr self, const shard_link& s, script which,
                                     script_call c, bool by_sha) {
  auto k = static_cast<size_t>(which);
  std::vector<std::string> a;
  a.reserve(3 + c.keys.size() + c.args.size());
  a.emplace_back(by_sha ? "EVALSHA" : "EVAL");
  a.emplace_back(by_sha ? s.sha[k] : self->state.texts[k]);
  a.emplace_back(std::to_string(c.keys.size()));
  for (auto& x : c.keys)
    a.push_back(std::move(x));
  for (auto& x : c.args)
    a.push_back(std::move(x));
  return a;
}

/// Runs a script on shard `s` by its digest; only when Redis lost it
/// (NOSCRIPT: restarted, SCRIPT FLUSH) is its text sent.
void eval(broker_ptr self, shard_link& s, script which, script_call c,
          std::function<void(redis_value)> done) {
  auto index = s.index;
  auto argv = std::make_shared<const std::vector<std::string>>(
    script_argv(self, s, which, std::move(c), true));
  command(self, s, argv, [self, index, which, argv, done](redis_value v) mutable {
    if (v.is_error() && v.str.rfind("NOSCRIPT", 0) == 0) {
      auto again = *argv;
      again[0] = "EVAL";
      again[1] = self->state.texts[static_cast<size_t>(which)];
      return command(self, self->state.shards[index], std::move(again), std::move(done));
    }
    done(std::move(v));
  });
}

// -- requests of the hubs ---------------------------------------------------

/// Publishes wait in their instance's batch until the broker's mailbox holds
/// nothing older (a flush queued behind what was there): what the hubs
/// published in one pass goes to Redis as one script call.
void publish(broker_ptr self, publish_request& req, uint64_t ticket,
             const stream_follower_actor& to) {
  auto& s = shard_for(self, req.user);
  if (!s.ready()) {
    ++self->state.shared->publish_failures;
    self->send(to, published_atom::value, ticket,
               unavailable("redis " + s.name() + " is not connected"));
    return;
  }
  if (s.batch.empty() && !self->state.flush_queued) {
    self->state.flush_queued = true;
    self->send(self, flush_publishes_atom::value);
  }
  s.batch.push_back({std::move(req), ticket, to, std::chrono::steady_clock::now()});
}

} // namespace

/// A master demoted under the command link. Nothing more is sent on it (the
/// instance is not ready), and it goes once what was sent before is answered
/// (a PING behind it): those calls were refused as to a replica, certainly
/// not applied (503), where dropping at once would leave their outcome
/// unknown (504). With Sentinel the sentinels are asked where the master is
/// now.
void leave_replica(broker_ptr self, shard_link& s, const char* how) {
  if (s.replica_gen == s.cmd_gen)
    return; // leaving already
  s.replica_gen = s.cmd_gen;
  s.replica_since_ms = steady_ms();
  // Said before readiness drops, so whoever sees it not ready can read why.
  self->state.log->warn("redis {}: {}", s.name(), how);
  refresh_ready(self);
  if (s.by_sentinel())
    ask_again(self, s, how);
  auto link = s.cmd;
  command_on(self, link, std::make_shared<const std::vector<std::string>>(
                           std::vector<std::string>{"PING"}),
             [self, link](redis_value) { drop(self, link, "a replica"); });
}

namespace {

/// One script call for (at most `max_batch` of) an instance's batch.
void flush(broker_ptr self, shard_link& s) {
  constexpr size_t max_batch = 256;
  if (s.replica_gen == s.cmd_gen) { // leaving a replica: nothing more goes on its link
    for (auto& p : std::exchange(s.batch, {})) {
      ++self->state.shared->publish_failures;
      self->send(p.to, published_atom::value, p.ticket,
                 unavailable("redis " + s.name() + " is a replica now"));
    }
    return;
  }
  while (!s.batch.empty()) {
    auto n = std::min(s.batch.size(), max_batch);
    auto taken = std::make_shared<std::vector<pending_publish>>(
      std::make_move_iterator(s.batch.begin()),
      std::make_move_iterator(s.batch.begin() + static_cast<ptrdiff_t>(n)));
    s.batch.erase(s.batch.begin(), s.batch.begin() + static_cast<ptrdiff_t>(n));
    std::vector<const publish_request*> reqs;
    reqs.reserve(n);
    for (auto& p : *taken)
      reqs.push_back(&p.req);
    auto pb = publish_call(self->state.cfg.prefix, reqs, s.run, new_epoch(self));
    eval(self, s, script::publish, std::move(pb.call),
         [self, taken, order = std::move(pb.order), index = s.index](redis_value v) {
           auto& counters = *self->state.shared;
           if (v.kind == redis_value::error && v.str.rfind("READONLY", 0) == 0)
             leave_replica(self, self->state.shards[index],
                           "a write was refused as to a replica (READONLY)");
           auto r = parse_publish(v, taken->size());
           if (!r) {
             counters.publish_failures += taken->size();
             for (auto& p : *taken)
               self->send(p.to, published_atom::value, p.ticket, r.error());
             return;
           }
           ++counters.publish_calls;
           auto now = std::chrono::steady_clock::now();
           for (size_t i = 0; i < taken->size(); ++i) {
             auto& p = (*taken)[order[i]];
             auto& outcome = (*r)[i];
             if (!outcome) {
               // A user's keys the script cannot use: that user's alone.
               ++counters.publish_failures;
               auto& s = self->state.shards[index];
               if (s.refused_log.should_log(steady_ms()))
                 self->state.log->error("redis {}: a publish for user {} was refused ({}): "
                                        "its keys ({}*) hold what the scripts did not write",
                                        s.name(), p.req.user, self->home_system().render(outcome.error()),
                                        keys_for(self->state.cfg.prefix, p.req.user).prefix);
               self->send(p.to, published_atom::value, p.ticket, std::move(outcome.error()));
               continue;
             }
             ++counters.publishes;
             counters.publish_latency.observe(
               std::chrono::duration<double>(now - p.started).count());
             self->send(p.to, published_atom::value, p.ticket, std::move(*outcome));
           }
         });
  }
}

/// Whether a head's device list can be trusted to say who left. After
/// this node had been cut off from `s` for longer than the liveness keys
/// live, the other nodes may have been cut off too (Redis paused) and their
/// keys lapsed: a node missing from the list may only not have renewed its
/// key yet. Each does at once when its link is back, within a second, but
/// may be busy following its users again: for three of the keys' lifetimes
/// after such an outage, nobody is taken for gone.
bool liveness_settled(const broker_state& st, const shard_link& s) {
  int64_t ttl = 0;
  for (auto& [node, a] : st.alive)
    ttl = std::max(ttl, a.ttl_ms);
  return s.outage_ms < ttl || steady_ms() - s.cmd_since_ms >= 3 * ttl;
}

void reply_head(broker_ptr self, const std::string& user,
                caf::typed_response_promise<stream_head> rp) {
  auto& s = shard_for(self, user);
  eval(self, s, script::head,
       head_call(keys_for(self->state.cfg.prefix, user), s.run, new_epoch(self),
                 self->state.cfg.prefix + "alive:", wall_ms(), self->state.cfg),
       [rp, settled = liveness_settled(self->state, s)](redis_value v) mutable {
         auto h = parse_head(v);
         if (!h) {
           rp.deliver(h.error());
           return;
         }
         h->devices_complete = settled;
         rp.deliver(std::move(*h));
       });
}

/// Answers the follows of `user` waiting for its subscription.
void serve_waiting(broker_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return;
  auto waiting = std::move(i->second.waiting);
  i->second.waiting.clear();
  for (auto& w : waiting)
    reply_head(self, user, std::move(w));
  if (i->second.followers.empty()) { // they unfollowed while waiting
    self->state.users.erase(i);
    self->state.leaving.insert(user);
  }
}

caf::result<stream_head> follow(broker_ptr self, const std::string& user,
                                const stream_follower_actor& f) {
  auto& st = self->state;
  auto& s = shard_for(self, user);
  if (!s.ready())
    return unavailable("redis " + s.name() + " is not connected");
  // A socket starts with its follow: none does before the node knows which
  // tokens are revoked (its token was checked against what it knew).
  if (!st.shared->revocations_known)
    return unavailable("the revocations in force are not read yet");
  auto& u = st.users[user];
  if (std::find(u.followers.begin(), u.followers.end(), f) == u.followers.end())
    u.followers.push_back(f);
  st.leaving.erase(user);
  auto rp = self->make_response_promise<stream_head>();
  auto channel = keys_for(st.cfg.prefix, user).channel;
  if (s.confirmed.count(channel)) {
    reply_head(self, user, rp);
  } else {
    u.waiting.push_back(rp);
    if (s.asked.insert(channel).second)
      subscribe(self, s, {channel}, true);
  }
  return rp;
}

void unfollow(broker_ptr self, const std::string& user, const stream_follower_actor& f) {
  auto& st = self->state;
  auto i = st.users.find(user);
  if (i == st.users.end())
    return;
  auto& fs = i->second.followers;
  fs.erase(std::remove(fs.begin(), fs.end(), f), fs.end());
  if (fs.empty() && i->second.waiting.empty()) {
    st.users.erase(i);
    st.leaving.insert(user); // unsubscribed with others at the next tick
  }
}

caf::result<stream_range> read(broker_ptr self, const std::string& user,
                               const std::string& epoch, uint64_t since, uint64_t upto) {
  auto& s = shard_for(self, user);
  if (!s.ready())
    return unavailable("redis " + s.name() + " is not connected");
  auto rp = self->make_response_promise<stream_range>();
  eval(self, s, script::read,
       read_call(keys_for(self->state.cfg.prefix, user), s.run, new_epoch(self), epoch,
                 since, upto, wall_ms(), self->state.cfg),
       [rp, user](redis_value v) mutable {
         auto r = parse_read(v, user);
         if (r)
           rp.deliver(std::move(*r));
         else
           rp.deliver(r.error());
       });
  return rp;
}

caf::result<stream_head> head(broker_ptr self, const std::string& user) {
  auto& s = shard_for(self, user);
  if (!s.ready())
    return unavailable("redis " + s.name() + " is not connected");
  auto rp = self->make_response_promise<stream_head>();
  reply_head(self, user, rp);
  return rp;
}

/// A message on a channel of shard `index`: the probe, or a user's.
void on_channel(broker_ptr self, uint32_t index, const std::string& channel,
                const std::string& payload) {
  auto& st = self->state;
  if (channel == st.probe_channel) {
    probe_back(self, st.shards[index]);
    return;
  }
  if (on_revoked(self, channel, payload))
    return;
  auto user = user_of_channel(st.cfg.prefix, channel);
  auto i = user ? st.users.find(*user) : st.users.end();
  if (i == st.users.end())
    return; // unfollowed since
  auto ms = parse_channel_message(*user, payload);
  if (ms.empty()) {
    if (st.shared->bad_messages++ % 1000 == 0)
      st.log->warn("redis {}: a message on {} is not a channel message (redis_scripts.hpp): "
                   "dropped ({} so far)", st.shards[index].name(), channel,
                   st.shared->bad_messages.load());
    return;
  }
  st.shared->messages += ms.size();
  // Parsed once, shared by every hub of this node that follows the user.
  for (auto& m : ms)
    for (auto& f : i->second.followers)
      self->send(f, deliver_atom::value, m);
}

void on_confirm(broker_ptr self, uint32_t index, uint64_t gen, const std::string& channel) {
  auto& st = self->state;
  auto& s = st.shards.at(index);
  if (gen != s.sub_gen)
    return; // confirmed on a link that is gone
  // A confirmation that comes after the channel was left (its UNSUBSCRIBE
  // is on its way behind it) must not mark it live: nothing would subscribe
  // it again when its user comes back.
  if (!s.asked.erase(channel))
    return;
  s.confirmed.insert(channel);
  st.shared->subscriptions = 0;
  for (auto& x : st.shards)
    st.shared->subscriptions += x.confirmed.size();
  if (channel == st.probe_channel) {
    s.probe.reset();
    became_ready(self, s);
  } else if (channel == revoked_key(st)) {
    load_revocations(self);
  } else if (auto user = user_of_channel(st.cfg.prefix, channel); user && s.ready()) {
    serve_waiting(self, *user);
  }
}

} // namespace

// -- the actor ---------------------------------------------------------------

void became_ready(broker_ptr self, shard_link& s) {
  auto& st = self->state;
  if (!s.ready())
    return;
  st.log->info("redis {}: connected (run {}), {} users to follow", s.name(), s.run,
               st.users.size());
  s.connect_log.reset(); // a next failure to connect is news again
  s.last_heard_ms = steady_ms();
  refresh_ready(self);
  send_alive(self, s);
  for (auto& [user, u] : st.users)
    if (&shard_for(self, user) == &s && s.confirmed.count(keys_for(st.cfg.prefix, user).channel))
      serve_waiting(self, user);
  if (s.resubscribed) {
    // What was published while the subscriber was away never came: every
    // hub following a user here reads its gap.
    s.resubscribed = false;
    std::set<stream_follower_actor> all;
    for (auto& [user, u] : st.users)
      if (&shard_for(self, user) == &s)
        all.insert(u.followers.begin(), u.followers.end());
    for (auto& f : all)
      self->send(f, resync_atom::value);
  }
}

broker_impl::behavior_type redis_broker_actor(broker_ptr self, redis_broker_config cfg,
                                              std::shared_ptr<redis_broker::shared> sh) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.shared = std::move(sh);
  // Woken by its links on the io thread, it runs there: no hop to a worker.
  run_on_io_thread(self);
  st.rng.seed(std::random_device{}());
  st.probe_channel = st.cfg.prefix + "probe:" + new_epoch(self);
  st.texts = {publish_script(st.cfg), scripts::head, scripts::read};
  for (uint32_t i = 0; i < st.cfg.shards.size(); ++i) {
    st.shards.emplace_back();
    st.shards.back().index = i;
    st.shards.back().at = st.cfg.shards[i];
    st.shards.back().probe_channel = st.probe_channel;
  }
  st.shared->shards = st.shards.size();
  return {
    [=](publish_atom, publish_request& req, uint64_t ticket,
        const stream_follower_actor& to) { publish(self, req, ticket, to); },
    [=](flush_publishes_atom) {
      self->state.flush_queued = false;
      for (auto& s : self->state.shards)
        flush(self, s);
    },
    [=](follow_atom, const std::string& user, const stream_follower_actor& f) {
      return follow(self, user, f);
    },
    [=](unfollow_atom, const std::string& user, const stream_follower_actor& f) {
      unfollow(self, user, f);
    },
    [=](read_atom, const std::string& user, const std::string& epoch, uint64_t since,
        uint64_t upto) { return read(self, user, epoch, since, upto); },
    [=](head_atom, const std::string& user) { return head(self, user); },
    [=](revoke_atom, const revocation& r) { return revoke(self, r); },
    [=](nodes_atom) { return nodes(self); },
    [=](alive_atom, const std::string& node, int64_t ttl_ms) {
      auto& a = self->state.alive[node];
      a.ttl_ms = ttl_ms;
      for (auto& s : self->state.shards)
        if (s.ready() && steady_ms() - a.sent_ms >= ttl_ms / 3)
          send_alive(self, s);
    },
    [=](reply_atom, uint64_t id, redis_value& v) { on_reply(self, id, std::move(v)); },
    [=](link_atom, uint32_t index, bool subscriber, uint64_t gen, bool up,
        const std::string& why) { on_link(self, index, subscriber, gen, up, why); },
    [=](channel_atom, uint32_t index, const std::string& channel,
        const std::string& payload) { on_channel(self, index, channel, payload); },
    [=](confirm_atom, uint32_t index, uint64_t gen, const std::string& channel) {
      on_confirm(self, index, gen, channel);
    },
    [=](sentinel_atom, uint32_t index, uint64_t gen, bool up, const std::string& why) {
      on_sentinel_link(self, index, gen, up, why);
    },
    [=](switched_atom, uint32_t index, uint64_t gen, const std::string& payload) {
      on_switch_master(self, index, gen, payload);
    },
    [=](tick_atom) { tick(self); },
  };
}

} // namespace kullsync::broker

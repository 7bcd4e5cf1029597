// The broker's links to each Redis instance: made (and made again), asked
// for the run id and the scripts, subscribed, proven alive. Every hiredis
// call is posted to the io thread; every answer comes back as a message.
#include "redis_link.hpp"

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "redis_codec.hpp"
#include "redis_connection.hpp"
#include "redis_io.hpp"
#include "redis_scripts.hpp"

namespace kullsync::broker {

namespace {

void connect(broker_ptr self, shard_link& s, bool subscriber) {
  if (!self->state.shared->io.load())
    return;
  auto h = handle(self);
  auto* unit = self->state.shared->unit;
  auto index = s.index;
  auto gen = ++(subscriber ? s.sub_gen : s.cmd_gen);
  redis_connection::handlers hs;
  hs.up = [h, unit, index, subscriber, gen] {
    wake(unit, h, link_atom::value, index, subscriber, gen, true, std::string{});
  };
  hs.down = [h, unit, index, subscriber, gen](const std::string& why) {
    wake(unit, h, link_atom::value, index, subscriber, gen, false, why);
  };
  if (subscriber) {
    hs.message = [h, unit, index](std::string channel, std::string payload) {
      wake(unit, h, channel_atom::value, index, std::move(channel), std::move(payload));
    };
    hs.subscribed = [h, unit, index, gen](std::string channel) {
      wake(unit, h, confirm_atom::value, index, gen, std::move(channel));
    };
  }
  auto& link = subscriber ? s.sub : s.cmd;
  auto old = std::move(link);
  link = std::make_shared<redis_connection>(*self->state.shared->io.load(), s.at.host,
                                            s.at.port, std::move(hs));
  {
    std::lock_guard<std::mutex> guard{self->state.shared->mtx};
    self->state.shared->connections[{index, subscriber}] = link;
  }
  (subscriber ? s.sub_connecting : s.cmd_connecting) = true;
  auto timeout = self->state.cfg.connect_timeout;
  on_io(self, [old, c = link, timeout] {
    if (old)
      old->shutdown();
    c->connect(timeout);
  });
}

/// The reason a link is dropped for a refused AUTH, said apart (above).
const std::string auth_refused = "AUTH refused";

/// A link just up: AUTH first when the instance has a password, then
/// `next`; a refused AUTH drops the link (retried, and logged, each tick).
void authenticate(broker_ptr self, shard_link& s, bool subscriber,
                  std::function<void()> next) {
  if (s.at.password.empty())
    return next();
  std::vector<std::string> argv{"AUTH"};
  if (!s.at.user.empty())
    argv.push_back(s.at.user);
  argv.push_back(s.at.password);
  auto h = handle(self);
  auto index = s.index;
  auto id = ++self->state.next_id;
  self->state.pending.emplace(id, [self, index, subscriber, next](redis_value v) {
    auto& s = self->state.shards[index];
    if (v.kind != redis_value::status) {
      // Both links, every tick: said once a minute (a wrong password stays).
      if (s.auth_log.should_log(steady_ms(), 60'000))
        self->state.log->error("redis {}: AUTH refused: {} (trying again every {} ms)",
                               s.name(), v.str, self->state.cfg.probe_interval.count());
      return drop(self, subscriber ? s.sub : s.cmd, auth_refused);
    }
    next();
  });
  on_io(self, [c = subscriber ? s.sub : s.cmd, argv = std::move(argv), h, id,
               unit = self->state.shared->unit] {
    c->command(argv, [h, id, unit](redis_value v) {
      wake(unit, h, reply_atom::value, id, std::move(v));
    });
  });
}

/// The command link is up: that its peer is a master (ROLE: nothing is
/// written to a replica), its mastership, then the scripts.
void prepare(broker_ptr self, shard_link& s) {
  auto index = s.index;
  if (!s.role_checked) {
    return check_master(self, s, [self, index] {
      self->state.shards[index].role_checked = true;
      prepare(self, self->state.shards[index]);
    });
  }
  // INFO's default sections (server and replication among them): an older
  // Redis takes no list of sections, and must be told apart by its version.
  command(self, s, {"INFO"}, [self, index](redis_value v) {
    auto& s = self->state.shards[index];
    if (v.kind == redis_value::string)
      if (auto version = too_old_for_scripts(v.str)) {
        self->state.log->error("redis {}: version {} is older than 7.0, which the stream "
                               "scripts need (SET NX GET): reconnecting", s.name(), *version);
        return drop(self, s.cmd, "redis older than 7.0");
      }
    auto run = v.kind == redis_value::string ? mastership_of(v.str) : std::nullopt;
    if (!run) {
      self->state.log->error("redis {}: INFO has no run_id or master_replid ({}): reconnecting",
                             s.name(), v.is_error() ? v.str : "no text");
      return drop(self, s.cmd, "no run id");
    }
    s.run = *run;
    for (size_t k = 0; k < s.sha.size(); ++k)
      command(self, s, {"SCRIPT", "LOAD", self->state.texts[k]}, [self, index, k](redis_value v) {
        auto& s = self->state.shards[index];
        if (v.kind != redis_value::string) {
          // Loading its data after a restart, Redis refuses until done: said
          // once in a while, not for every script at every attempt.
          bool loading = v.str.rfind("LOADING", 0) == 0;
          if (!loading)
            self->state.log->error("redis {}: SCRIPT LOAD failed: {}", s.name(), v.str);
          else if (s.loading_log.should_log(steady_ms()))
            self->state.log->warn("redis {}: still loading its data: not ready until done",
                                  s.name());
          return drop(self, s.cmd, "script load failed");
        }
        s.sha[k] = v.str;
        if (++s.scripts_loaded == s.sha.size())
          became_ready(self, s);
      });
  });
}

/// The subscriber link is up: the probe's channel, and every followed
/// user's of this instance.
void resubscribe(broker_ptr self, shard_link& s) {
  auto& st = self->state;
  std::vector<std::string> channels{st.probe_channel};
  if (s.index == 0 && st.cfg.revocations)
    channels.push_back(revoked_key(st));
  auto n = static_cast<uint32_t>(st.shards.size());
  for (auto& [user, u] : st.users)
    if (shard_of(user, n) == s.index)
      channels.push_back(keys_for(st.cfg.prefix, user).channel);
  s.asked.insert(channels.begin(), channels.end());
  // In batches, so that one command stays small.
  constexpr size_t batch = 512;
  for (size_t i = 0; i < channels.size(); i += batch)
    subscribe(self, s,
              {channels.begin() + static_cast<ptrdiff_t>(i),
               channels.begin() + static_cast<ptrdiff_t>(std::min(channels.size(), i + batch))},
              true);
}

/// Follows waiting on an instance that cannot serve them (its subscriber
/// went, or it stopped being ready): they fail now, as a follow asked of it
/// now would, and their hubs try again. No follow waits on an instance that
/// is not ready, since a confirmation that comes meanwhile serves nobody and
/// an instance that stays a replica never becomes ready.
void fail_waiting(broker_ptr self, shard_link& s, const std::string& why) {
  auto n = static_cast<uint32_t>(self->state.shards.size());
  for (auto& [user, u] : self->state.users)
    if (!u.waiting.empty() && shard_of(user, n) == s.index) {
      for (auto& rp : u.waiting)
        rp.deliver(server::make_error(server::broker_errc::unavailable,
                                      "redis " + s.name() + " " + why));
      u.waiting.clear();
    }
}

} // namespace

void drop(broker_ptr self, const std::shared_ptr<redis_connection>& c, std::string why) {
  if (c)
    on_io(self, [c, why = std::move(why)] { c->drop(why); });
}

void command(broker_ptr self, shard_link& s, std::vector<std::string> argv,
             std::function<void(redis_value)> done) {
  command(self, s, std::make_shared<const std::vector<std::string>>(std::move(argv)),
          std::move(done));
}

void command(broker_ptr self, shard_link& s,
             std::shared_ptr<const std::vector<std::string>> argv,
             std::function<void(redis_value)> done) {
  command_on(self, s.cmd_up ? s.cmd : nullptr, std::move(argv), std::move(done));
}

void command_on(broker_ptr self, const std::shared_ptr<redis_connection>& link,
                std::shared_ptr<const std::vector<std::string>> argv,
                std::function<void(redis_value)> done) {
  if (!link || !self->state.shared->io.load()) {
    done(redis_value::not_sent("not connected"));
    return;
  }
  auto id = ++self->state.next_id;
  self->state.pending.emplace(id, std::move(done));
  on_io(self, [c = link, argv = std::move(argv), h = handle(self), id,
               unit = self->state.shared->unit] {
    c->command(*argv, [h, id, unit](redis_value v) {
      wake(unit, h, reply_atom::value, id, std::move(v));
    });
  });
}

void subscribe(broker_ptr self, shard_link& s, std::vector<std::string> channels, bool on) {
  on_io(self, [c = s.sub, channels = std::move(channels), on] { c->subscribe(channels, on); });
}

void on_reply(broker_ptr self, uint64_t id, redis_value v) {
  auto i = self->state.pending.find(id);
  if (i == self->state.pending.end())
    return;
  auto done = std::move(i->second);
  self->state.pending.erase(i);
  done(std::move(v));
}

void on_link(broker_ptr self, uint32_t index, bool subscriber, uint64_t gen, bool up,
             const std::string& why) {
  auto& st = self->state;
  auto& s = st.shards.at(index);
  if (gen != (subscriber ? s.sub_gen : s.cmd_gen))
    return; // an older link's news
  (subscriber ? s.sub_connecting : s.cmd_connecting) = false;
  auto now = steady_ms();
  auto& is_up = subscriber ? s.sub_up : s.cmd_up;
  if (!up) {
    s.probe.reset(); // its PUBLISH or its way back went with the link
    // A link that never served (connected to a Redis that does not answer:
    // paused, or still loading) fails as a connect does, again every few
    // seconds: said as one.
    bool served = subscriber ? s.confirmed.count(st.probe_channel) > 0
                             : s.scripts_loaded >= s.sha.size();
    if (is_up && (why == auth_refused || (!subscriber && gen == s.explained_gen))) {
      ++st.shared->reconnects; // its reason was said, once in a while (check_master)
      st.log->debug("redis {}: command link dropped ({})", s.name(), why);
    } else if (is_up && served) {
      ++st.shared->reconnects;
      st.log->warn("redis {}: {} link lost ({}): publishes for its users fail until "
                   "it is back", s.name(), subscriber ? "subscriber" : "command", why);
    } else if ((is_up || !subscriber) && s.connect_log.should_log(now, 60'000)) {
      // Retried every tick: said when it starts, then once a minute (a typo
      // in --broker, a Redis down or paused), so that a node not ready says
      // why.
      if (is_up)
        ++st.shared->reconnects;
      st.log->warn("redis {}: cannot connect: {} (trying again every {} ms)", s.name(), why,
                   st.cfg.probe_interval.count());
    } else {
      if (is_up)
        ++st.shared->reconnects;
      st.log->debug("redis {}: cannot connect: {}", s.name(), why);
    }
    is_up = false;
    if (subscriber) {
      s.asked.clear();
      s.confirmed.clear();
      fail_waiting(self, s, "subscriber lost");
    } else {
      s.run.clear();
      s.scripts_loaded = 0;
      // The master may have moved; unless this node moved it just now, the
      // sentinels are asked again before the link is made again.
      if (s.by_sentinel() && gen != s.left_gen)
        ask_again(self, s, why);
    }
    refresh_ready(self);
    return;
  }
  is_up = true;
  st.log->debug("redis {}: {} link up", s.name(), subscriber ? "subscriber" : "command");
  if (subscriber) {
    s.sub_since_ms = now;
    s.resubscribed = s.sub_was_up;
    s.sub_was_up = true;
    authenticate(self, s, true, [self, index] { resubscribe(self, self->state.shards[index]); });
  } else {
    s.cmd_since_ms = now;
    s.outage_ms = s.last_heard_ms == 0 ? 0 : now - s.last_heard_ms;
    s.run.clear();
    s.scripts_loaded = 0;
    s.role_checked = false;
    authenticate(self, s, false, [self, index] { prepare(self, self->state.shards[index]); });
  }
}

void tick(broker_ptr self) {
  auto& st = self->state;
  auto now = steady_ms();
  auto connect_patience = 3 * st.cfg.probe_interval.count();
  for (auto& s : st.shards) {
    watch_master(self, s);
    bool where = !s.by_sentinel() || s.master_known; // to connect to
    if (where && !s.cmd_up && !s.cmd_connecting)
      connect(self, s, false);
    if (where && !s.sub_up && !s.sub_connecting)
      connect(self, s, true);
    // A link that came up but never got ready is stuck (a paused server).
    if (s.cmd_up && s.scripts_loaded < s.sha.size()
        && now - s.cmd_since_ms > connect_patience)
      drop(self, s.cmd, "no answer since connecting");
    // A link left for finding a replica waits for its PING only so long.
    if (s.cmd_up && s.replica_gen == s.cmd_gen && now - s.replica_since_ms > connect_patience)
      drop(self, s.cmd, "a replica that does not answer");
    if (s.sub_up && !s.confirmed.count(st.probe_channel)
        && now - s.sub_since_ms > connect_patience)
      drop(self, s.sub, "no subscription confirmed since connecting");
    if (s.ready())
      probe(self, s, now);
    else
      fail_waiting(self, s, "is not ready");
  }
  if (revocations_due(self))
    load_revocations(self);
  // Users nobody here follows any more leave their channels together.
  std::map<uint32_t, std::vector<std::string>> leaving;
  auto n = static_cast<uint32_t>(st.shards.size());
  for (auto& user : st.leaving)
    if (!st.users.count(user))
      leaving[shard_of(user, n)].push_back(keys_for(st.cfg.prefix, user).channel);
  st.leaving.clear();
  for (auto& [index, channels] : leaving) {
    auto& s = st.shards[index];
    for (auto& c : channels) {
      s.confirmed.erase(c);
      s.asked.erase(c);
    }
    if (s.sub_up)
      subscribe(self, s, std::move(channels), false);
  }
  for (auto& [node, a] : st.alive)
    if (now - a.sent_ms >= a.ttl_ms / 3)
      for (auto& s : st.shards)
        if (s.ready())
          send_alive(self, s);
  describe_node(self);
  st.last_tick_ms = now;
  self->delayed_send(self, st.cfg.probe_interval, tick_atom::value);
}

void send_alive(broker_ptr self, shard_link& s) {
  auto now = steady_ms();
  for (auto& [node, a] : self->state.alive) {
    a.sent_ms = now;
    command(self, s,
            {"SET", self->state.cfg.prefix + "alive:" + node, "1", "PX",
             std::to_string(a.ttl_ms)},
            [self, index = s.index, node = node](redis_value v) {
              // Refused (a full Redis: OOM), the key expires, and every node
              // takes this node's devices for gone: worth an operator's eye.
              auto& s = self->state.shards[index];
              // A link that went took it with it: its loss is logged as such.
              if (v.kind != redis_value::error || !s.alive_log.should_log(steady_ms()))
                return;
              self->state.log->error("redis {}: node {}'s liveness key was refused ({}): once it "
                                     "expires, other nodes take its devices for gone",
                                     s.name(), node, v.str);
            });
  }
}

void refresh_ready(broker_ptr self) {
  size_t n = 0;
  for (auto& s : self->state.shards)
    n += s.ready() ? 1 : 0;
  self->state.shared->ready_shards = n;
}

} // namespace kullsync::broker

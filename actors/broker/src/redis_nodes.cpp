// What the nodes of a cluster share besides the users' streams, kept in the
// first Redis instance: the tokens operators revoked (one sorted set whose
// members are "<before> <user>", scored by when each lapses, so that adding
// one never weakens another, lapsed ones leave by score in one command, and
// a channel announces each new one to every node's revocation list) and the
// list of live nodes (a hash of what each says of itself, with a deadline).
#include <cstdlib>
#include <set>

#include <caf/typed_event_based_actor.hpp>

#include "kullsync/common/numbers.hpp"
#include "broker_clock.hpp"
#include "redis_codec.hpp"
#include "redis_link.hpp"

namespace kullsync::broker {

namespace {

/// The sorted set of revocations ("<before> <user>" scored by until).
std::string revocations_key(const broker_state& st) {
  return revoked_key(st) + ":z";
}

/// A revocation's member of the sorted set ("<before> <user>").
std::string member_of(const server::revocation& r) {
  return std::to_string(r.before_ms) + " " + r.user;
}

/// A revocation from its member and score; nothing if malformed.
std::optional<server::revocation> member(const std::string& m, const std::string& score) {
  auto space = m.find(' ');
  if (space == std::string::npos || space + 1 >= m.size())
    return std::nullopt;
  auto before = to_int<int64_t>(std::string_view{m}.substr(0, space));
  char* end = nullptr;
  auto until = std::strtod(score.c_str(), &end); // Redis writes a score as a double
  if (!before || score.empty() || end != score.c_str() + score.size())
    return std::nullopt;
  return server::revocation{m.substr(space + 1), *before, static_cast<int64_t>(until)};
}

/// "before|until" of a revocation an older node stored in a hash.
std::optional<server::revocation> stored(const std::string& user, std::string_view v) {
  auto bar = v.find('|');
  auto before = bar == std::string_view::npos ? std::nullopt : to_int<int64_t>(v.substr(0, bar));
  auto until = before ? to_int<int64_t>(v.substr(bar + 1)) : std::nullopt;
  if (!until)
    return std::nullopt;
  return server::revocation{user, *before, *until};
}

} // namespace

std::string revoked_key(const broker_state& st) {
  return st.cfg.prefix + "revoked";
}

std::string nodes_key(const broker_state& st) {
  return st.cfg.prefix + "nodes";
}

bool revocations_due(broker_ptr self) {
  auto& st = self->state;
  if (!st.cfg.revocations || st.shards.empty())
    return false;
  auto& s = st.shards.front();
  return (!st.shared->revocations_known || st.revocations_stale) && !st.revocations_reading
         && s.cmd_up && s.confirmed.count(revoked_key(st));
}

namespace {

/// What this node holds in force and the first instance's set lacks (it
/// lost them: restarted empty, failed over to a replica that had not had
/// them) is stored there again, so that a node started later refuses those
/// tokens too. A revocation only ever grows (ZADD GT): storing one again
/// weakens nothing. How many were stored.
size_t store_missing_revocations(broker_ptr self, const std::set<std::string>& there) {
  auto& st = self->state;
  size_t n = 0;
  for (auto& r : st.cfg.revocations->in_force(wall_ms())) {
    auto m = member_of(r);
    if (there.count(m))
      continue;
    command(self, st.shards.front(),
            {"ZADD", revocations_key(st), "GT", std::to_string(r.until_ms), std::move(m)},
            [self, user = r.user](redis_value v) {
              if (v.kind != redis_value::integer) // READONLY, OOM, the link lost
                self->state.log->warn("redis: user {}'s revocation could not be stored "
                                      "again ({}): a node started now would not know it",
                                      user, v.is_error() ? v.str : "no answer");
            });
    ++n;
  }
  return n;
}

} // namespace

void load_revocations(broker_ptr self) {
  auto& st = self->state;
  if (!st.cfg.revocations || st.shards.empty())
    return;
  st.revocations_stale = true; // until this read succeeds
  st.revocations_reading = true;
  auto gen = ++st.revocations_gen; // an older read's answer may miss newer ones
  auto now = std::to_string(wall_ms());
  // Lapsed ones leave by their score, atomically: one added meanwhile
  // lapses later, so it stays.
  command(self, st.shards.front(), {"ZREMRANGEBYSCORE", revocations_key(st), "-inf", now},
          [](redis_value) {});
  command(self, st.shards.front(),
          {"ZRANGEBYSCORE", revocations_key(st), "(" + now, "+inf", "WITHSCORES"},
          [self, gen](redis_value v) {
            auto& st = self->state;
            if (gen != st.revocations_gen)
              return;
            st.revocations_reading = false;
            if (v.kind != redis_value::array || v.elements.size() % 2) {
              if (st.shared->revocations_known)
                st.log->warn("redis: the revoked tokens could not be read again ({}): "
                             "tried again each tick (those read before stay in force)",
                             v.is_error() ? v.str : "not a sorted set");
              else
                st.log->warn("redis: the revoked tokens could not be read ({}): the node is "
                             "not ready until they are (tried again each tick)",
                             v.is_error() ? v.str : "not a sorted set");
              return;
            }
            size_t n = 0, bad = 0;
            std::set<std::string> there;
            for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
              if (auto r = member(v.elements[i].str, v.elements[i + 1].str)) {
                st.cfg.revocations->add(*r);
                there.insert(v.elements[i].str);
                ++n;
              } else {
                ++bad;
              }
            }
            if (bad > 0)
              st.log->warn("redis: {} stored revocations are malformed: ignored", bad);
            auto restored = store_missing_revocations(self, there);
            if (restored > 0)
              st.log->warn("redis: {} revocations in force there; {} more this node "
                           "holds were missing (Redis lost them): storing them again",
                           n, restored);
            else
              st.log->info("redis: {} revocations in force", n);
            st.shared->revocations_known = true;
            st.revocations_stale = false;
          });
  // What nodes of an earlier version stored (a hash), still honoured.
  command(self, st.shards.front(), {"HGETALL", revoked_key(st)}, [self](redis_value v) {
    auto& st = self->state;
    if (v.kind != redis_value::array)
      return; // none, or not a hash: nothing from an earlier version
    auto now = wall_ms();
    for (size_t i = 0; i + 1 < v.elements.size(); i += 2)
      if (auto r = stored(v.elements[i].str, v.elements[i + 1].str); r && r->until_ms > now)
        st.cfg.revocations->add(*r);
  });
}

bool on_revoked(broker_ptr self, const std::string& channel, const std::string& payload) {
  auto& st = self->state;
  if (channel != revoked_key(st))
    return false;
  auto r = server::revocation_from_text(payload);
  if (!r) {
    st.log->warn("redis: a revocation announced as '{}' is malformed: ignored", payload);
    return true;
  }
  if (st.cfg.revocations)
    st.cfg.revocations->add(*r);
  return true;
}

caf::result<bool> revoke(broker_ptr self, const server::revocation& r) {
  auto& st = self->state;
  auto& s = st.shards.front();
  if (!s.ready())
    return server::make_error(server::broker_errc::unavailable,
                              "redis " + s.name() + " is not connected");
  auto rp = self->make_response_promise<bool>();
  // Stored first (one command: it happened or not), then announced. The
  // ZADD's reply decides: not sent or refused, nothing happened; stored but
  // not announced, or no answer, the outcome is unknown (nodes that missed
  // the announcement learn of it when they next resubscribe).
  auto stored = std::make_shared<redis_value>();
  command(self, s,
          {"ZADD", revocations_key(st), "GT", std::to_string(r.until_ms), member_of(r)},
          [stored](redis_value v) { *stored = std::move(v); });
  command(self, s,
          {"PUBLISH", revoked_key(st), server::to_text(r)},
          [rp, stored](redis_value v) mutable {
            if (stored->kind == redis_value::integer && v.kind == redis_value::integer)
              rp.deliver(true);
            else if (stored->kind == redis_value::unsent || refused_before_writing(*stored))
              rp.deliver(server::make_error(server::broker_errc::unavailable,
                                            "revoke: " + stored->str));
            else
              rp.deliver(server::make_error(server::broker_errc::outcome_unknown,
                                            "revoke: " + (stored->is_error() ? stored->str
                                                                             : v.str)));
          });
  return rp;
}

namespace {

/// An instance's node id: the instance is "<node id>.<start epoch>".
std::string_view node_id_of(std::string_view instance) {
  return instance.substr(0, instance.rfind('.'));
}

/// Another running process with this node's --node-id (a configuration
/// copied without changing it) mixes the two in `kullsync-ctl nodes` and in
/// the users' device lists: said once a minute. A restarted node's old
/// entry is no twin: its listing stops moving on.
void look_for_twins(broker_ptr self) {
  auto& st = self->state;
  command(self, st.shards.front(), {"HGETALL", nodes_key(st)}, [self](redis_value v) {
    auto& st = self->state;
    if (v.kind != redis_value::array || v.elements.size() % 2)
      return;
    auto mine = node_id_of(st.cfg.instance);
    std::map<std::string, int64_t> seen;
    std::string twin;
    for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
      auto& instance = v.elements[i].str;
      if (instance == st.cfg.instance || node_id_of(instance) != mine)
        continue;
      auto& text = v.elements[i + 1].str;
      auto until = to_int<int64_t>(std::string_view{text}.substr(0, text.find('|')));
      if (!until)
        continue;
      seen[instance] = *until;
      auto before = st.twins.find(instance);
      if (before != st.twins.end() && *until > before->second)
        twin = instance;
    }
    st.twins = std::move(seen);
    if (!twin.empty() && st.twin_log.should_log(steady_ms(), 60'000))
      st.log->error("another running node has this node's --node-id ('{}', instance {}): "
                    "give each node its own id (the nodes' listing and the users' devices "
                    "mix them)",
                    std::string{mine}, twin);
  });
}

} // namespace

void describe_node(broker_ptr self) {
  auto& st = self->state;
  if (!st.cfg.describe || st.shards.empty() || !st.shards.front().ready())
    return;
  if (st.descriptions++ % 5 == 0)
    look_for_twins(self);
  // Listed until three probe intervals from now: a node that stops saying
  // so leaves the list.
  auto until = wall_ms() + 3 * st.cfg.probe_interval.count();
  command(self, st.shards.front(),
          {"HSET", nodes_key(st), st.cfg.instance,
           std::to_string(until) + "|" + st.cfg.describe()},
          [](redis_value) {});
}

caf::result<std::vector<std::string>> nodes(broker_ptr self) {
  auto& st = self->state;
  auto& s = st.shards.front();
  if (!s.ready())
    return server::make_error(server::broker_errc::unavailable,
                              "redis " + s.name() + " is not connected");
  auto rp = self->make_response_promise<std::vector<std::string>>();
  command(self, s, {"HGETALL", nodes_key(st)}, [self, rp](redis_value v) mutable {
    auto& st = self->state;
    if (v.kind != redis_value::array || v.elements.size() % 2) {
      rp.deliver(server::make_error(server::broker_errc::bad_reply, "nodes: not a hash"));
      return;
    }
    auto now = wall_ms();
    std::vector<std::string> live, gone{"HDEL", nodes_key(st)};
    for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
      auto& text = v.elements[i + 1].str;
      auto bar = text.find('|');
      auto until = bar == std::string::npos
                     ? std::nullopt
                     : to_int<int64_t>(std::string_view{text}.substr(0, bar));
      if (until && *until > now)
        live.push_back(text.substr(bar + 1));
      else
        gone.push_back(v.elements[i].str);
    }
    if (gone.size() > 2)
      command(self, st.shards.front(), std::move(gone), [](redis_value) {});
    rp.deliver(std::move(live));
  });
  return rp;
}

} // namespace kullsync::broker

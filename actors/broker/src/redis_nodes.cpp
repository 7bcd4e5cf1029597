// What the nodes of a cluster share besides the users' streams, kept in the
// first Redis instance: the tokens operators revoked (two sorted sets, each
// user's `before` and `until`, raised with ZADD GT so that a weaker
// revocation never replaces a stronger one, and a channel that announces
// each new one to every node's revocation list) and the list of live nodes
// (a hash of what each says of itself, with a deadline).
#include <charconv>
#include <cstdlib>
#include <map>

#include <caf/typed_event_based_actor.hpp>

#include "redis_codec.hpp"
#include "redis_link.hpp"

namespace kullsync::broker {

namespace {

/// Wall time: deadlines other nodes read.
int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::optional<int64_t> number(std::string_view s) {
  int64_t x = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return x;
}

} // namespace

std::string revoked_key(const broker_state& st) {
  return st.cfg.prefix + "revoked";
}

namespace {

std::string before_key(const broker_state& st) {
  return revoked_key(st) + ":before";
}

std::string until_key(const broker_state& st) {
  return revoked_key(st) + ":until";
}

/// A sorted set's ZRANGE WITHSCORES as member -> score (ms).
std::optional<std::map<std::string, int64_t>> scores(const redis_value& v) {
  if (v.kind != redis_value::array || v.elements.size() % 2)
    return std::nullopt;
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    char* end = nullptr;
    auto& text = v.elements[i + 1].str;
    auto x = std::strtod(text.c_str(), &end); // Redis writes a score as a double
    if (text.empty() || end != text.c_str() + text.size())
      return std::nullopt;
    out[v.elements[i].str] = static_cast<int64_t>(x);
  }
  return out;
}

/// Every revocation in the sets, in force or lapsed.
void read_revocations(broker_ptr self,
                      std::function<void(std::optional<std::vector<server::revocation>>,
                                         std::string)> done) {
  auto& st = self->state;
  command(self, st.shards.front(), {"ZRANGE", until_key(st), "0", "-1", "WITHSCORES"},
          [self, done](redis_value u) {
            auto& st = self->state;
            command(self, st.shards.front(),
                    {"ZRANGE", before_key(st), "0", "-1", "WITHSCORES"},
                    [u = std::move(u), done](redis_value b) {
                      auto until = scores(u);
                      auto before = scores(b);
                      if (!until || !before)
                        return done(std::nullopt, u.is_error()   ? u.str
                                                  : b.is_error() ? b.str
                                                                 : "not sorted sets");
                      std::vector<server::revocation> out;
                      for (auto& [user, t] : *until)
                        if (auto i = before->find(user); i != before->end())
                          out.push_back({user, i->second, t});
                      done(std::move(out), {});
                    });
          });
}

} // namespace

std::string nodes_key(const broker_state& st) {
  return st.cfg.prefix + "nodes";
}

void load_revocations(broker_ptr self) {
  auto& st = self->state;
  if (!st.cfg.revocations || st.shards.empty())
    return;
  read_revocations(self, [self](std::optional<std::vector<server::revocation>> all,
                                std::string why) {
    auto& st = self->state;
    if (!all) {
      st.log->warn("redis: the revoked tokens could not be read ({}): retried when the "
                   "subscriber comes back", why);
      return;
    }
    auto now = wall_ms();
    std::vector<std::string> lapsed{"ZREM", before_key(st)};
    size_t n = 0;
    for (auto& r : *all) {
      if (r.until_ms <= now) {
        lapsed.push_back(r.user);
        continue;
      }
      st.cfg.revocations->add(r);
      ++n;
    }
    if (lapsed.size() > 2) {
      command(self, st.shards.front(), std::move(lapsed), [](redis_value) {});
      command(self, st.shards.front(),
              {"ZREMRANGEBYSCORE", until_key(st), "-inf", std::to_string(now)},
              [](redis_value) {});
    }
    st.log->info("redis: {} revocations in force", n);
  });
}

bool on_revoked(broker_ptr self, const std::string& channel, const std::string& payload) {
  auto& st = self->state;
  if (channel != revoked_key(st))
    return false;
  // "<before> <until> <user>"
  auto a = payload.find(' ');
  auto b = a == std::string::npos ? a : payload.find(' ', a + 1);
  auto before = b == std::string::npos ? std::nullopt : number(std::string_view{payload}.substr(0, a));
  auto until = before ? number(std::string_view{payload}.substr(a + 1, b - a - 1)) : std::nullopt;
  if (!until || b + 1 >= payload.size()) {
    st.log->warn("redis: a revocation announced as '{}' is malformed: ignored", payload);
    return true;
  }
  if (st.cfg.revocations)
    st.cfg.revocations->add({payload.substr(b + 1), *before, *until});
  return true;
}

caf::result<bool> revoke(broker_ptr self, const server::revocation& r) {
  auto& st = self->state;
  auto& s = st.shards.front();
  if (!s.ready())
    return server::make_error(server::broker_errc::unavailable,
                              "redis " + s.name() + " is not connected");
  auto rp = self->make_response_promise<bool>();
  // Replies come in order: the first says whether anything was sent.
  auto first = std::make_shared<redis_value>();
  command(self, s, {"ZADD", before_key(st), "GT", std::to_string(r.before_ms), r.user},
          [first](redis_value v) { *first = std::move(v); });
  command(self, s, {"ZADD", until_key(st), "GT", std::to_string(r.until_ms), r.user},
          [](redis_value) {});
  command(self, s,
          {"PUBLISH", revoked_key(st),
           std::to_string(r.before_ms) + " " + std::to_string(r.until_ms) + " " + r.user},
          [rp, first](redis_value v) mutable {
            if (v.kind == redis_value::integer)
              rp.deliver(true);
            else if (first->kind == redis_value::unsent || refused_before_writing(*first))
              rp.deliver(server::make_error(server::broker_errc::unavailable,
                                            "revoke: " + v.str));
            else
              rp.deliver(server::make_error(server::broker_errc::outcome_unknown,
                                            "revoke: " + v.str));
          });
  return rp;
}

void describe_node(broker_ptr self) {
  auto& st = self->state;
  if (!st.cfg.describe || st.shards.empty() || !st.shards.front().ready())
    return;
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
      auto until = bar == std::string::npos ? std::nullopt
                                            : number(std::string_view{text}.substr(0, bar));
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

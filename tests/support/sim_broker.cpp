#include "sim_broker.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace kullsync::test {

namespace {

using namespace kullsync::server;

/// One write to a stream, with what undoes it (a failover loses it).
/// A state field's value as the broker keeps it.
struct state_value {
  bool terminal = false;
  int64_t rank = -1;
  int64_t at = 0;
  int64_t until = 0; // a terminal one is dropped after this (0: never)
  std::string frame;
};

struct write {
  stream_message msg;
  std::string state_field;
  std::optional<state_value> state_before; // nullopt: the field was absent
  std::string dedup_key;
};

struct stream {
  std::string epoch;
  std::string run; // the run id the epoch belongs to
  uint64_t top = 0;
  std::map<std::string, uint64_t> node_tops; // broker_mutation::per_node_numbering
  std::deque<write> writes; // the last `history_size`, ending at top
  std::map<std::string, state_value> state;
  std::map<std::string, uint64_t> dedup;
  std::map<std::pair<std::string, std::string>, int64_t> presence; // (node, device)
};

struct broker_state {
  sim_broker_config cfg;
  std::mt19937_64 rng;
  double loss = 0;
  bool down = false;
  uint64_t run = 1;
  uint64_t epochs = 0;
  std::map<std::string, stream> streams;
  std::map<std::string, std::vector<stream_follower_actor>> followers;
  std::map<std::string, caf::actor_clock::time_point> alive_until; // node instances
  static inline const char* name = "kullsync.sim_broker";
};

using broker_ptr = sim_broker_actor::stateful_pointer<broker_state>;

std::string run_id(broker_ptr self) {
  return "r" + std::to_string(self->state.run);
}

/// The user's stream, with a new epoch if the run changed since (a
/// failover, or a new stream).
stream& open(broker_ptr self, const std::string& user) {
  auto& s = self->state.streams[user];
  if (s.run != run_id(self)) {
    s.run = run_id(self);
    s.epoch = "b" + std::to_string(++self->state.epochs);
  }
  return s;
}

bool alive(broker_ptr self, const std::string& node) {
  auto i = self->state.alive_until.find(node);
  return i != self->state.alive_until.end() && i->second >= self->clock().now();
}

stream_head head(broker_ptr self, const std::string& user) {
  auto& s = open(self, user);
  stream_head h;
  h.epoch = s.epoch;
  h.top = s.top;
  for (auto& [field, value] : s.state)
    h.state.push_back({value.frame, value.until});
  for (auto& [key, at] : s.presence)
    if (alive(self, key.first))
      h.devices.push_back({key.first, key.second, at});
  return h;
}

void fan_out(broker_ptr self, const stream_message& m) {
  auto& st = self->state;
  auto i = st.followers.find(m.user);
  if (i == st.followers.end())
    return;
  std::uniform_real_distribution<double> coin{0, 1};
  for (auto& f : i->second)
    if (st.loss == 0 || coin(st.rng) >= st.loss)
      self->send(f, deliver_atom::value, m);
}

publish_receipt publish(broker_ptr self, publish_request& req) {
  // Mirrors publish_request's rule (and shoot_table::is_stale).
  auto replaces = [](const state_value& now, const publish_request& req) {
    if (req.state_terminal || req.state_rank < 0)
      return true;
    if (now.terminal)
      return !(req.state_at != 0 && now.at != 0 && req.state_at < now.at);
    return req.state_rank >= now.rank;
  };
  auto& s = open(self, req.msg.user);
  if (!req.dedup_key.empty())
    if (auto i = s.dedup.find(req.dedup_key); i != s.dedup.end())
      return {i->second, s.epoch, true};
  if (req.presence) {
    auto key = std::make_pair(req.presence->node, req.presence->device);
    if (req.present)
      s.presence[key] = req.presence->connected_at;
    else
      s.presence.erase(key);
  }
  if (!req.numbered) {
    fan_out(self, req.msg);
    return {0, s.epoch, false};
  }
  write w;
  w.msg = std::move(req.msg);
  w.msg.seq = ++s.top;
  if (self->state.cfg.mutation == broker_mutation::per_node_numbering)
    w.msg.seq = ++s.node_tops[w.msg.origin];
  w.msg.epoch = s.epoch;
  w.state_field = req.state_field;
  if (!w.state_field.empty()) {
    // Finished shoots past their linger go first, as the Redis script does:
    // one that is gone no longer makes an older update stale.
    for (auto j = s.state.begin(); j != s.state.end();)
      j = j->second.until != 0 && j->second.until <= req.state_now ? s.state.erase(j)
                                                                   : std::next(j);
    auto i = s.state.find(w.state_field);
    if (i != s.state.end())
      w.state_before = i->second;
    if (i == s.state.end() || replaces(i->second, req)) {
      auto until = req.state_terminal && req.state_linger_ms > 0
                     ? req.state_now + req.state_linger_ms : 0;
      s.state[w.state_field] = {req.state_terminal, req.state_rank, req.state_at, until,
                                w.msg.frame};
    }
  }
  w.dedup_key = req.dedup_key;
  if (!w.dedup_key.empty())
    s.dedup[w.dedup_key] = w.msg.seq;
  fan_out(self, w.msg);
  publish_receipt r{w.msg.seq, s.epoch, false};
  s.writes.push_back(std::move(w));
  if (s.writes.size() > self->state.cfg.history_size)
    s.writes.pop_front();
  return r;
}

stream_range read(broker_ptr self, const std::string& user, const std::string& epoch,
                  uint64_t since, uint64_t upto) {
  auto& s = open(self, user);
  stream_range r;
  r.epoch = s.epoch;
  if (epoch != s.epoch || since > s.top)
    return r;
  upto = std::min(upto, s.top);
  if (since < upto && (s.writes.empty() || s.writes.front().msg.seq > since + 1))
    return r; // evicted
  r.complete = true;
  for (auto& w : s.writes)
    if (w.msg.seq > since && w.msg.seq <= upto)
      r.messages.push_back(w.msg);
  return r;
}

/// The last `n` writes of every stream never reached the new master.
void failover(broker_ptr self, uint64_t n) {
  for (auto& [user, s] : self->state.streams) {
    for (uint64_t k = 0; k < n && !s.writes.empty(); ++k) {
      auto& w = s.writes.back();
      if (!w.state_field.empty()) {
        if (w.state_before)
          s.state[w.state_field] = *w.state_before;
        else
          s.state.erase(w.state_field);
      }
      if (!w.dedup_key.empty())
        s.dedup.erase(w.dedup_key);
      --s.top;
      s.writes.pop_back();
    }
  }
  ++self->state.run;
}

caf::error unavailable() {
  return make_error(broker_errc::unavailable, "simulated outage");
}

sim_broker_actor::behavior_type broker(broker_ptr self, sim_broker_config cfg) {
  self->state.cfg = cfg;
  self->state.rng.seed(cfg.seed);
  return {
    [=](publish_atom, publish_request& req) -> caf::result<publish_receipt> {
      if (self->state.down)
        return unavailable();
      return publish(self, req);
    },
    [=](follow_atom, const std::string& user,
        const stream_follower_actor& f) -> caf::result<stream_head> {
      if (self->state.down)
        return unavailable();
      auto& fs = self->state.followers[user];
      if (std::find(fs.begin(), fs.end(), f) == fs.end())
        fs.push_back(f);
      return head(self, user);
    },
    [=](unfollow_atom, const std::string& user, const stream_follower_actor& f) {
      auto& fs = self->state.followers[user];
      fs.erase(std::remove(fs.begin(), fs.end(), f), fs.end());
      if (fs.empty())
        self->state.followers.erase(user);
    },
    [=](read_atom, const std::string& user, const std::string& epoch, uint64_t since,
        uint64_t upto) -> caf::result<stream_range> {
      if (self->state.down)
        return unavailable();
      return read(self, user, epoch, since, upto);
    },
    [=](head_atom, const std::string& user) -> caf::result<stream_head> {
      if (self->state.down)
        return unavailable();
      return head(self, user);
    },
    [=](alive_atom, const std::string& node, int64_t ttl_ms) {
      self->state.alive_until[node] = self->clock().now() + std::chrono::milliseconds{ttl_ms};
    },
    [=](lossy_atom, double rate) { self->state.loss = rate; },
    [=](resub_atom) {
      std::vector<stream_follower_actor> all;
      for (auto& [user, fs] : self->state.followers)
        for (auto& f : fs)
          if (std::find(all.begin(), all.end(), f) == all.end())
            all.push_back(f);
      self->state.followers.clear();
      for (auto& f : all)
        self->send(f, resync_atom::value);
    },
    [=](failover_atom, uint64_t n) { failover(self, n); },
    [=](outage_atom, bool on) { self->state.down = on; },
  };
}

} // namespace

sim_broker_actor spawn_sim_broker(caf::actor_system& sys, sim_broker_config cfg) {
  return sys.spawn(broker, cfg);
}

} // namespace kullsync::test

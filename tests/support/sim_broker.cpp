#include "sim_broker.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "harness.hpp"
#include "kullsync/common/clock.hpp"
#include "stream/stream_core.hpp"

namespace kullsync::test {

namespace {

using namespace kullsync::server;

struct broker_state {
  sim_broker_config cfg;
  std::mt19937_64 rng;
  wall_clock clock;
  std::unique_ptr<stream_core> core;
  double loss = 0;
  double unanswered = 0;
  bool down = false;
  int64_t late_heads_ms = 0;
  uint64_t next_answer = 0;
  struct late_head {
    stream_head head; // as it was when asked
    caf::typed_response_promise<stream_head> rp;
  };
  std::map<uint64_t, late_head> late;
  int64_t late_deliveries_ms = 0;
  /// Deliveries waiting, per follower, in order.
  std::map<stream_follower_actor, std::deque<message_ptr>> waiting;
  uint64_t runs = 1;
  std::map<std::string, std::vector<stream_follower_actor>> followers;
  std::map<std::string, caf::actor_clock::time_point> alive_until; // node instances
  /// Each stream as it was before each of its last writes (newest last):
  /// what a replica that missed them has.
  std::map<std::string, std::deque<std::shared_ptr<const stream_core::saved>>> before;
  std::map<std::pair<std::string, std::string>, uint64_t> node_tops; // the mutation
  static inline const char* name = "kullsync.sim_broker";
};

/// Internal: a late head is due; a follower's next late delivery is due.
using answer_atom = caf::atom_constant<caf::atom("answer")>;
using due_atom = caf::atom_constant<caf::atom("due")>;
using broker_impl = sim_broker_actor::extend<caf::reacts_to<answer_atom, uint64_t>,
                                             caf::reacts_to<due_atom, stream_follower_actor>>;
using broker_ptr = broker_impl::stateful_pointer<broker_state>;

int64_t now(broker_ptr self) {
  return epoch_ms(self->home_system(), self->state.clock);
}

bool alive(broker_ptr self, const std::string& node) {
  auto i = self->state.alive_until.find(node);
  return i != self->state.alive_until.end() && i->second >= self->clock().now();
}

stream_head head(broker_ptr self, const std::string& user) {
  return self->state.core->head(user, now(self),
                                [self](const std::string& node) { return alive(self, node); });
}

void deliver_later(broker_ptr self, const stream_follower_actor& f) {
  auto& st = self->state;
  auto delay = std::uniform_int_distribution<int64_t>{0, st.late_deliveries_ms}(st.rng);
  self->delayed_send(self, std::chrono::milliseconds{delay}, due_atom::value, f);
}

void deliver(broker_ptr self, const stream_follower_actor& f, const message_ptr& m) {
  auto& st = self->state;
  auto i = st.waiting.find(f);
  if (st.late_deliveries_ms == 0 && i == st.waiting.end())
    return self->send(f, deliver_atom::value, m);
  auto& q = st.waiting[f];
  q.push_back(m);
  if (q.size() == 1)
    deliver_later(self, f);
}

void deliver_due(broker_ptr self, const stream_follower_actor& f) {
  auto& st = self->state;
  auto i = st.waiting.find(f);
  if (i == st.waiting.end())
    return;
  self->send(f, deliver_atom::value, i->second.front());
  i->second.pop_front();
  if (i->second.empty())
    st.waiting.erase(i);
  else
    deliver_later(self, f);
}

void fan_out(broker_ptr self, const message_ptr& m) {
  auto& st = self->state;
  auto i = st.followers.find(m->user());
  if (i == st.followers.end())
    return;
  std::uniform_real_distribution<double> coin{0, 1};
  for (auto& f : i->second)
    if (st.loss == 0 || coin(st.rng) >= st.loss)
      deliver(self, f, m);
}

publish_receipt publish(broker_ptr self, publish_request req) {
  auto& st = self->state;
  auto& saved = st.before[req.user];
  saved.push_back(st.core->save(req.user));
  if (saved.size() > sim_failover_depth)
    saved.pop_front();
  message_ptr m;
  auto origin = req.origin;
  auto r = st.core->publish(std::move(req), &m);
  if (m && m->seq != 0 && st.cfg.mutation == broker_mutation::per_node_numbering) {
    // A cluster without one shared counter: each node's publishes numbered
    // on a counter of its own.
    auto seq = ++st.node_tops[{m->user(), origin}];
    m = make_message(m->key, seq, m->origin, v1_frame(*m).str(), m->state);
    r.seq = seq;
  }
  if (m)
    fan_out(self, m);
  return r;
}

/// The last `n` writes of every stream never reached the new master.
void failover(broker_ptr self, uint64_t n) {
  auto& st = self->state;
  n = std::min(n, sim_failover_depth);
  for (auto& [user, saved] : st.before)
    if (n > 0 && saved.size() >= n)
      st.core->restore(user, saved[saved.size() - n]);
  st.before.clear();
  st.core->new_run();
}

caf::error unavailable() {
  return make_error(broker_errc::unavailable, "simulated outage");
}

broker_impl::behavior_type broker(broker_ptr self, sim_broker_config cfg) {
  auto& st = self->state;
  st.cfg = cfg;
  st.rng.seed(cfg.seed);
  st.clock = make_wall_clock(self->home_system(), sim_wall_start_ms);
  stream_limits limits;
  limits.history_size = cfg.history_size;
  st.core = std::make_unique<stream_core>("b", limits);
  return {
    [=](publish_atom, const publish_request& req, uint64_t ticket,
        const stream_follower_actor& to) {
      auto& st = self->state;
      if (st.down)
        return self->send(to, published_atom::value, ticket, unavailable());
      std::uniform_real_distribution<double> coin{0, 1};
      if (st.unanswered > 0 && coin(st.rng) < st.unanswered) {
        if (coin(st.rng) < 0.5)
          publish(self, req);
        return self->send(to, published_atom::value, ticket,
                          make_error(broker_errc::outcome_unknown, "simulated lost answer"));
      }
      self->send(to, published_atom::value, ticket, publish(self, req));
    },
    [=](follow_atom, const std::string& user,
        const stream_follower_actor& f) -> caf::result<stream_head> {
      if (self->state.down)
        return unavailable();
      auto& st = self->state;
      auto& fs = st.followers[user];
      if (std::find(fs.begin(), fs.end(), f) == fs.end())
        fs.push_back(f);
      if (st.late_heads_ms == 0)
        return head(self, user);
      auto rp = self->make_response_promise<stream_head>();
      auto id = ++st.next_answer;
      st.late.emplace(id, broker_state::late_head{head(self, user), rp});
      auto delay = std::uniform_int_distribution<int64_t>{0, st.late_heads_ms}(st.rng);
      self->delayed_send(self, std::chrono::milliseconds{delay}, answer_atom::value, id);
      return rp;
    },
    [=](answer_atom, uint64_t id) {
      if (auto due = self->state.late.extract(id))
        due.mapped().rp.deliver(std::move(due.mapped().head));
    },
    [=](late_heads_atom, int64_t max_ms) { self->state.late_heads_ms = max_ms; },
    [=](late_deliveries_atom, int64_t max_ms) { self->state.late_deliveries_ms = max_ms; },
    [=](due_atom, const stream_follower_actor& f) { deliver_due(self, f); },
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
      return self->state.core->read(user, epoch, since, upto, now(self));
    },
    [=](head_atom, const std::string& user) -> caf::result<stream_head> {
      if (self->state.down)
        return unavailable();
      return head(self, user);
    },
    [=](alive_atom, const std::string& node, int64_t ttl_ms) {
      self->state.alive_until[node] = self->clock().now() + std::chrono::milliseconds{ttl_ms};
    },
    // Revocations and the list of nodes are not part of the simulated world.
    [=](revoke_atom, const revocation&) -> caf::result<bool> {
      return make_error(broker_errc::unavailable, "revocations are not simulated");
    },
    [=](nodes_atom) -> caf::result<std::vector<std::string>> {
      return make_error(broker_errc::unavailable, "the list of nodes is not simulated");
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
    [=](unanswered_atom, double rate) { self->state.unanswered = rate; },
  };
}

} // namespace

sim_broker_actor spawn_sim_broker(caf::actor_system& sys, sim_broker_config cfg) {
  return caf::actor_cast<sim_broker_actor>(sys.spawn(broker, cfg));
}

} // namespace kullsync::test

// An operator's drain of the node: not ready, joins closed, and the open
// sockets closed with 1001 a few at a time, so that their devices reconnect
// elsewhere without arriving all at once (a thundering herd the other
// nodes would pay for).
#include <algorithm>
#include <cmath>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

namespace {

constexpr auto step = std::chrono::milliseconds{100};

struct node_drain_state {
  std::shared_ptr<const session_env> env;
  drain_status status;
  double credit = 0;     // sockets the pace allows and no step closed yet
  bool stepping = false; // a step is scheduled, or under way until every hub answered
  uint64_t run = 0;      // which drain a step belongs to (an undrain ends one)
  uint64_t steps = 0;
  // Each hub's sockets not yet told to close, as of its last answer (so
  // that the pace goes to the hubs that still have some).
  std::vector<uint64_t> hub_left;
  std::shared_ptr<spdlog::logger> log = log::get("server.drain");
  static inline const char* name = "kullsync.node_drain";
};

using drain_ptr = node_drain_impl::stateful_pointer<node_drain_state>;

void schedule(drain_ptr self) {
  self->state.stepping = true;
  self->delayed_send(self, step, sweep_atom::value, self->state.run);
}

/// Each hub's part of `quota`: split among the hubs that have sockets left,
/// the remainder's first socket to a different one each step.
std::vector<uint64_t> shares(const node_drain_state& st, uint64_t quota) {
  std::vector<size_t> busy;
  for (size_t j = 0; j < st.hub_left.size(); ++j)
    if (st.hub_left[j] > 0)
      busy.push_back(j);
  std::vector<uint64_t> out(st.hub_left.size(), 0);
  for (size_t k = 0; k < busy.size(); ++k) {
    auto rank = (k + busy.size() - st.steps % busy.size()) % busy.size();
    out[busy[k]] = quota / busy.size() + (rank < quota % busy.size() ? 1 : 0);
  }
  return out;
}

/// Hub `i` said how many of its sockets are left; once every hub did, the
/// step is over.
void answered(drain_ptr self, const std::shared_ptr<size_t>& answers, size_t i, uint64_t left) {
  auto& st = self->state;
  st.hub_left[i] = left;
  if (++*answers < st.hub_left.size())
    return;
  st.stepping = false; // this step is over
  bool was_left = st.status.left > 0;
  st.status.left = 0;
  for (auto n : st.hub_left)
    st.status.left += n;
  if (st.status.left > 0)
    return schedule(self);
  if (was_left)
    st.log->info("drained: every socket was told to close (1001); joins are closed "
                 "until the drain ends");
}

/// One step: each hub closes its share of what the pace allows since the
/// last one, and says how many of its sockets are left.
void take_step(drain_ptr self, uint64_t run) {
  auto& st = self->state;
  if (run != st.run || !st.status.draining)
    return; // a step of a drain that ended
  auto& hubs = st.env->hubs;
  st.credit = std::min(st.credit + st.status.rate * 0.1, static_cast<double>(st.status.rate));
  auto quota = static_cast<uint64_t>(std::floor(st.credit));
  st.credit -= static_cast<double>(quota);
  ++st.steps;
  auto answers = std::make_shared<size_t>(0);
  auto parts = shares(st, quota);
  for (size_t i = 0; i < hubs.size(); ++i) {
    auto share = static_cast<uint32_t>(std::min<uint64_t>(parts[i], UINT32_MAX));
    self->request(hubs[i], std::chrono::seconds{10}, drain_atom::value, share)
      .then(
        [self, answers, run, i](uint64_t left) {
          if (run == self->state.run)
            answered(self, answers, i, left);
        },
        [self, answers, run, i](const caf::error&) {
          if (run == self->state.run) // busy: asked again at the next step
            answered(self, answers, i, std::max<uint64_t>(self->state.hub_left[i], 1));
        });
  }
}

node_drain_impl::behavior_type node_drain(drain_ptr self, std::shared_ptr<const session_env> env) {
  self->state.env = std::move(env);
  return {
    [=](drain_atom, uint32_t rate) -> drain_status {
      auto& st = self->state;
      if (!st.status.draining) {
        st.log->warn("draining: /readyz answers 503, sockets that join are closed, and the "
                     "{} open are closed with 1001 at {} a second",
                     st.env->counters->sockets_now.load(std::memory_order_relaxed), rate);
        st.status.left = st.env->counters->sockets_now.load(std::memory_order_relaxed);
        st.credit = 0;
        st.hub_left.assign(st.env->hubs.size(), 1); // unknown: each asked
      } else if (rate != st.status.rate) {
        st.log->info("drain's pace: {} sockets a second", rate);
      }
      st.status.draining = true;
      st.status.rate = rate;
      st.env->cfg.draining->store(true);
      if (!st.stepping) { // else the step under way goes on at the new pace
        st.stepping = true;
        self->send(self, sweep_atom::value, st.run);
      }
      return st.status;
    },
    [=](undrain_atom) -> drain_status {
      auto& st = self->state;
      if (st.status.draining)
        st.log->warn("drain ended: ready again, sockets that join stay open ({} were not "
                     "closed)", st.status.left);
      st.status = drain_status{};
      ++st.run; // the steps under way or scheduled end
      st.stepping = false;
      st.env->cfg.draining->store(false);
      for (auto& h : st.env->hubs)
        self->send(h, undrain_atom::value);
      return st.status;
    },
    [=](get_atom) { return self->state.status; },
    [=](sweep_atom, uint64_t run) { take_step(self, run); },
  };
}

} // namespace

node_drain_actor spawn_node_drain(caf::actor_system& sys,
                                  std::shared_ptr<const session_env> env) {
  return caf::actor_cast<node_drain_actor>(sys.spawn(node_drain, std::move(env)));
}

} // namespace kullsync::server

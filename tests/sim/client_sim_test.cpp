// Seeded fault schedules against the whole client engine in virtual time.
//
//   KULLSYNC_SIM_SEEDS=N   number of seeds (default 300)
//   KULLSYNC_SIM_SEED=S    replay only seed S
//
// Every seed checks the invariants below; a failure prints its seed and the
// command that replays it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <sstream>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "harness.hpp"
#include "sim_server.hpp"
#include "kullsync/log.hpp"

using namespace kullsync;
using namespace kullsync::test;
using namespace std::chrono_literals;
using msg::shoot_status;

namespace {

constexpr caf::timespan fault_phase = 10min;

enum class op {
  refuse_on, refuse_off, cut_clean, cut_half_open, slow_network, lossy_network,
  heal_faults, restart_peer, burst, disconnect, connect, endpoint_change,
  network_changed, send_progress, subscribe_late, unsubscribe_late,
};

struct event {
  caf::timespan at;
  op what;
  uint64_t arg;
};

/// What the test itself did, for the invariants' exceptions.
struct command {
  caf::timespan at;
  op what;
};

std::vector<event> make_schedule(std::mt19937_64& rng) {
  static const std::vector<std::pair<op, int>> weights{
    {op::refuse_on, 3},      {op::refuse_off, 4},   {op::cut_clean, 5},
    {op::cut_half_open, 4},  {op::slow_network, 2}, {op::lossy_network, 2},
    {op::heal_faults, 3},    {op::restart_peer, 2}, {op::burst, 10},
    {op::disconnect, 2},     {op::connect, 4},      {op::endpoint_change, 2},
    {op::network_changed, 3}, {op::send_progress, 4}};
  int total = 0;
  for (auto& w : weights)
    total += w.second;
  std::uniform_int_distribution<int> pick{0, total - 1};
  std::uniform_int_distribution<int64_t> when{0, fault_phase.count()};
  std::uniform_int_distribution<int> count{15, 45};
  std::vector<event> xs;
  auto n = count(rng);
  for (int i = 0; i < n; ++i) {
    auto r = pick(rng);
    op what = weights.back().first;
    for (auto& w : weights) {
      if (r < w.second) {
        what = w.first;
        break;
      }
      r -= w.second;
    }
    xs.push_back({caf::timespan{when(rng)}, what, rng()});
  }
  // One late subscriber per run, to check it misses nothing while subscribed.
  auto a = caf::timespan{when(rng)}, b = caf::timespan{when(rng)};
  xs.push_back({std::min(a, b), op::subscribe_late, 0});
  xs.push_back({std::max(a, b), op::unsubscribe_late, 0});
  std::stable_sort(xs.begin(), xs.end(),
                   [](auto& x, auto& y) { return x.at < y.at; });
  return xs;
}

class sim_run {
public:
  explicit sim_run(uint64_t seed) : seed_(seed), rng_(seed), h_(config(seed), seed) {
    late_seen_ = std::make_shared<observations>();
  }

  static client_config config(uint64_t seed) {
    auto cfg = default_sim_config();
    // Seeded on every seed: a 1001's jitter is drawn even when `jitter` is 0.
    cfg.reconnect.jitter_seed = seed + 1;
    if (seed % 2 == 1)
      cfg.reconnect.jitter = 0.2;
    if (seed % 3 == 0) // a short schedule, so that runs reach "failed"
      cfg.reconnect.max_attempts = 4;
    return cfg;
  }

  /// Runs the schedule, heals, and returns a hash of everything observed.
  uint64_t play() {
    h_.engine.connect();
    commands_.push_back({h_.sim.elapsed(), op::connect});
    h_.sim.run();
    for (auto& e : make_schedule(rng_)) {
      if (e.at > h_.sim.elapsed())
        h_.sim.advance(e.at - h_.sim.elapsed());
      apply(e);
      h_.sim.run();
    }
    h_.sim.advance(fault_phase - std::min(fault_phase, h_.sim.elapsed()));
    heal();
    return trace_hash();
  }

  /// One line about what the run went through, for KULLSYNC_SIM_VERBOSE.
  std::string summary() {
    std::map<connection_state, int> n;
    for (auto& r : statuses())
      ++n[r.status.state];
    std::ostringstream os;
    os << "statuses=" << statuses().size() << " connected=" << n[connection_state::connected]
       << " reconnecting=" << n[connection_state::reconnecting]
       << " failed=" << n[connection_state::failed]
       << " messages=" << h_.seen->messages.size()
       << " states=" << h_.seen->states.size()
       << " net=" << h_.seen->network.size()
       << " half_open=" << half_open_cuts_.size()
       << " virtual_s=" << std::chrono::duration_cast<std::chrono::seconds>(h_.sim.elapsed()).count();
    return os.str();
  }

  void check() {
    check_transitions();
    check_handshakes();
    check_retry_schedule();
    check_no_retry_after_disconnect();
    check_half_open_detection();
    check_shoot_linger();
    check_subscribers();
    check_converged();
  }

  ~sim_run() {
    if (late_)
      caf::anon_send_exit(late_, caf::exit_reason::user_shutdown);
  }

private:
  void apply(const event& e) {
    auto now = h_.sim.elapsed();
    switch (e.what) {
      case op::refuse_on:
        caf::anon_send(h_.net, refuse_atom::value, true);
        break;
      case op::refuse_off:
        caf::anon_send(h_.net, refuse_atom::value, false);
        break;
      case op::cut_clean:
        caf::anon_send(h_.net, cut_atom::value, cut_mode::clean);
        break;
      case op::cut_half_open:
        half_open_cuts_.push_back(now);
        caf::anon_send(h_.net, cut_atom::value, cut_mode::half_open);
        break;
      case op::slow_network: {
        link_faults f;
        f.min_delay = caf::timespan{e.arg % 200 * 1ms};
        f.max_delay = f.min_delay + caf::timespan{e.arg % 1800 * 1ms};
        caf::anon_send(h_.net, faults_atom::value, f);
        break;
      }
      case op::lossy_network: {
        link_faults f;
        f.drop_rate = (e.arg % 30) / 100.0;
        caf::anon_send(h_.net, faults_atom::value, f);
        break;
      }
      case op::heal_faults:
        caf::anon_send(h_.net, faults_atom::value, link_faults{});
        break;
      case op::restart_peer:
        h_.restart_peer();
        break;
      case op::burst:
        burst(e.arg);
        break;
      case op::disconnect:
        commands_.push_back({now, op::disconnect});
        h_.engine.disconnect();
        break;
      case op::connect:
        commands_.push_back({now, op::connect});
        h_.engine.connect();
        break;
      case op::endpoint_change:
        commands_.push_back({now, op::endpoint_change});
        alt_ = !alt_;
        h_.engine.set_endpoint(alt_ ? sim_alt_url : sim_url);
        break;
      case op::network_changed:
        commands_.push_back({now, op::network_changed});
        h_.engine.network_changed();
        break;
      case op::send_progress: {
        msg::shoot_progress p;
        p.shoot_id = "local-" + std::to_string(e.arg % 3);
        p.status = shoot_status::processing;
        p.processed_count = static_cast<int64_t>(e.arg % 50);
        p.total_count = 50;
        h_.engine.send_progress(p);
        break;
      }
      case op::subscribe_late:
        late_ = spawn_recorder(h_.sim.sys(), late_seen_);
        h_.engine.subscribe(caf::actor_cast<state_subscriber_actor>(late_));
        break;
      case op::unsubscribe_late:
        h_.engine.unsubscribe(late_.address());
        break;
    }
  }

  void burst(uint64_t arg) {
    std::mt19937_64 r{arg};
    auto n = 1 + r() % 20;
    for (uint64_t i = 0; i < n; ++i) {
      if (r() % 4 == 0) {
        auto bal = static_cast<int64_t>(r() % 10000);
        h_.publish(credit_msg(bal, static_cast<int64_t>(r() % 100) - 50));
        continue;
      }
      auto id = "s" + std::to_string(r() % 6);
      auto total = static_cast<int64_t>(10 + r() % 90);
      auto done = static_cast<int64_t>(r() % (total + 1));
      auto roll = r() % 10;
      auto st = roll < 6 ? shoot_status::processing
                         : roll < 7 ? shoot_status::queued
                                    : roll < 9 ? shoot_status::completed
                                               : shoot_status::failed;
      h_.publish(progress_msg(id, st, done, total));
    }
  }

  void heal() {
    caf::anon_send(h_.net, refuse_atom::value, false);
    caf::anon_send(h_.net, faults_atom::value, link_faults{});
    h_.sim.run();
    commands_.push_back({h_.sim.elapsed(), op::connect});
    h_.engine.connect();
    commands_.push_back({h_.sim.elapsed(), op::network_changed});
    h_.engine.network_changed();
    // Long enough for a half-open link to be found and the retry to land.
    h_.sim.advance(3min);
    caf::anon_send(h_.peer, fresh_atom::value, std::string{"u1"});
    h_.sim.run();
    h_.sim.advance(h_.cfg.shoot_linger + 1s);
  }

  bool command_between(caf::timespan from, caf::timespan to) const {
    for (auto& c : commands_)
      if (c.at >= from && c.at <= to)
        return true;
    return false;
  }

  const std::vector<status_record>& statuses() const {
    return h_.seen->statuses;
  }

  void check_transitions() {
    auto& xs = statuses();
    for (size_t i = 1; i < xs.size(); ++i) {
      auto from = xs[i - 1].status.state, to = xs[i].status.state;
      if (from != to) {
        EXPECT_TRUE(is_legal_transition(from, to))
          << "illegal " << to_string(from) << " -> " << to_string(to)
          << " at " << xs[i].at.count();
      }
    }
  }

  void check_handshakes() {
    // Every "connected" is backed by a link the network opened, earlier or
    // at the same instant.
    size_t opens = 0, connecteds = 0, ni = 0;
    auto& net = h_.seen->network;
    for (auto& r : statuses()) {
      while (ni < net.size() && net[ni].at <= r.at) {
        opens += net[ni].line.rfind("open ", 0) == 0;
        ++ni;
      }
      if (r.status.state == connection_state::connected) {
        ++connecteds;
        EXPECT_LE(connecteds, opens) << "connected before any handshake at "
                                     << r.at.count();
      }
    }
  }

  void check_retry_schedule() {
    auto& rc = h_.cfg.reconnect;
    auto& xs = statuses();
    uint32_t last_attempt = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      auto& s = xs[i].status;
      if (s.state == connection_state::connected && i + 1 < xs.size()
          && xs[i + 1].at - xs[i].at >= rc.stable_after)
        last_attempt = 0; // proved healthy
      if (s.state == connection_state::disconnected)
        last_attempt = 0;
      if (s.state == connection_state::failed) {
        EXPECT_EQ(s.error, "Max reconnection attempts reached");
        ASSERT_GT(i, 0u);
        EXPECT_EQ(xs[i - 1].status.attempt, rc.max_attempts)
          << "failed before the last attempt at " << xs[i].at.count();
      }
      if (s.state != connection_state::reconnecting)
        continue;
      // The legacy client's counter reset at every connect; ours only after
      // a stable link or an explicit reset.
      auto reset = command_between(i > 0 ? xs[i - 1].at : caf::timespan{0}, xs[i].at);
      for (size_t j = i; j-- > 0 && !reset;) {
        if (xs[j].status.state == connection_state::reconnecting)
          break;
        reset = command_between(xs[j].at, xs[i].at);
      }
      if (!reset) {
        EXPECT_EQ(s.attempt, last_attempt + 1) << "at " << xs[i].at.count();
      }
      last_attempt = s.attempt;
      auto base = rc.delays[std::min<size_t>(s.attempt - 1, rc.delays.size() - 1)];
      auto lo = caf::timespan{static_cast<int64_t>(base.count() * (1 - rc.jitter))};
      auto hi = caf::timespan{static_cast<int64_t>(base.count() * (1 + rc.jitter))};
      EXPECT_GE(s.retry_in, lo - 1ns);
      EXPECT_LE(s.retry_in, hi + 1ns);
      if (rc.jitter == 0) {
        EXPECT_EQ(s.retry_in, base);
      }
      if (i + 1 < xs.size() && !command_between(xs[i].at, xs[i + 1].at)) {
        EXPECT_EQ(xs[i + 1].status.state, connection_state::connecting);
        EXPECT_EQ(xs[i + 1].at - xs[i].at, s.retry_in)
          << "retry not on schedule at " << xs[i].at.count();
        EXPECT_EQ(xs[i + 1].status.attempt, s.attempt);
      }
    }
  }

  void check_no_retry_after_disconnect() {
    for (auto& c : commands_) {
      if (c.what != op::disconnect)
        continue;
      auto next_connect = caf::timespan::max();
      for (auto& d : commands_)
        if (d.at > c.at && d.what == op::connect && d.at < next_connect)
          next_connect = d.at;
      for (auto& r : statuses())
        if (r.at > c.at && r.at < next_connect) {
          EXPECT_NE(r.status.state, connection_state::connecting)
            << "dialed after an explicit disconnect at " << r.at.count();
        }
    }
  }

  void check_half_open_detection() {
    auto limit = h_.cfg.keepalive.interval + h_.cfg.keepalive.deadline;
    for (auto t : half_open_cuts_) {
      const status_record* before = nullptr;
      const status_record* after = nullptr;
      for (auto& r : statuses()) {
        if (r.at <= t)
          before = &r;
        else if (after == nullptr)
          after = &r;
      }
      if (before == nullptr || before->status.state != connection_state::connected)
        continue;
      ASSERT_NE(after, nullptr) << "half-open link at " << t.count()
                                << " never detected";
      EXPECT_LE(after->at - t, limit)
        << "half-open link at " << t.count() << " detected late";
    }
  }

  void check_shoot_linger() {
    // A shoot leaves the state exactly `linger` after its last message, and
    // only if that message was terminal.
    std::map<std::string, message_record> last;
    auto& msgs = h_.seen->messages;
    size_t mi = 0;
    const sync_state* prev = nullptr;
    for (auto& r : h_.seen->states) {
      while (mi < msgs.size() && msgs[mi].at <= r.at) {
        if (auto* p = std::get_if<msg::shoot_progress>(&msgs[mi].message.body))
          last[p->shoot_id] = msgs[mi];
        ++mi;
      }
      if (prev != nullptr)
        for (auto& kv : prev->shoots) {
          if (r.state.shoots.count(kv.first))
            continue;
          auto& m = last[kv.first];
          auto& p = std::get<msg::shoot_progress>(m.message.body);
          EXPECT_TRUE(msg::is_terminal(p.status))
            << "shoot " << kv.first << " removed while active";
          EXPECT_EQ(r.at - m.at, h_.cfg.shoot_linger)
            << "shoot " << kv.first << " removed off time";
        }
      prev = &r.state;
    }
  }

  void check_subscribers() {
    auto consecutive = [](const std::vector<state_record>& xs, const char* who) {
      for (size_t i = 1; i < xs.size(); ++i)
        EXPECT_EQ(xs[i].state.version, xs[i - 1].state.version + 1)
          << who << " missed a state change";
    };
    consecutive(h_.seen->states, "first subscriber");
    consecutive(late_seen_->states, "late subscriber");
    std::map<uint64_t, const sync_state*> by_version;
    for (auto& r : h_.seen->states)
      by_version[r.state.version] = &r.state;
    for (auto& r : late_seen_->states) {
      auto i = by_version.find(r.state.version);
      if (r.state.version == 0)
        continue;
      ASSERT_NE(i, by_version.end());
      EXPECT_TRUE(*i->second == r.state) << "subscribers disagree on version "
                                         << r.state.version;
    }
  }

  void check_converged() {
    auto s = h_.state();
    ASSERT_EQ(s.connection.state, connection_state::connected)
      << "not connected after healing: " << s.connection.error;
    auto t = h_.truth("u1");
    EXPECT_EQ(s.credits, t.credits);
    std::map<std::string, msg::shoot_progress> active;
    for (auto& kv : t.shoots)
      if (!msg::is_terminal(kv.second.status))
        active.insert(kv);
    EXPECT_TRUE(s.shoots == active) << s.shoots.size() << " shoots vs "
                                    << active.size() << " on the peer: "
                                    << describe(s.shoots) << " vs " << describe(active);
    std::set<std::string> devices;
    for (auto& d : s.devices)
      devices.insert(d.device_id);
    EXPECT_EQ(devices, t.devices);
  }

  uint64_t trace_hash() const {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const std::string& s) {
      for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
      }
    };
    std::ostringstream os;
    for (auto& r : h_.seen->statuses)
      os << r.at.count() << to_string(r.status.state) << r.status.attempt
         << r.status.retry_in.count() << r.status.link << r.status.error << ';';
    for (auto& r : h_.seen->network)
      os << r.at.count() << r.line << ';';
    for (auto& r : h_.seen->states)
      os << r.at.count() << ':' << r.state.version << ':' << r.state.shoots.size()
         << ';';
    mix(os.str());
    return h;
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  harness h_;
  bool alt_ = false;
  std::vector<command> commands_;
  std::vector<caf::timespan> half_open_cuts_;
  recorder_actor late_;
  std::shared_ptr<observations> late_seen_;
};

} // namespace

TEST(client_sim, invariants_hold_on_every_seed) {
  log::set_level("off");
  for (auto seed : sim_seeds(300)) {
    SCOPED_TRACE("seed " + std::to_string(seed) + "; replay: " + replay_command(seed));
    sim_run run{seed};
    run.play();
    run.check();
    if (std::getenv("KULLSYNC_SIM_VERBOSE"))
      std::cerr << "seed " << seed << ": " << run.summary() << "\n";
    if (::testing::Test::HasFailure()) {
      std::cerr << "FAILED seed " << seed << "; replay: " << replay_command(seed) << "\n";
      break;
    }
  }
}

// KULLSYNC_SIM_SEED=S checks seed S (the one a failure named), else four.
TEST(client_sim, the_same_seed_gives_the_same_trace) {
  log::set_level("off");
  std::vector<uint64_t> seeds{1, 2, 7, 1234};
  if (std::getenv("KULLSYNC_SIM_SEED"))
    seeds = sim_seeds(1);
  for (uint64_t seed : seeds) {
    uint64_t first = 0, second = 0;
    {
      sim_run run{seed};
      first = run.play();
    }
    {
      sim_run run{seed};
      second = run.play();
    }
    EXPECT_EQ(first, second) << "seed " << seed << " is not deterministic";
  }
}

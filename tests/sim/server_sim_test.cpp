// The real server actors (hub shards, sessions, HTTP API) and several client
// engines in one deterministic simulation over the memory network, with
// seeded faults and server restarts. After healing and a fresh publish of
// the backend's truth, every client's state equals what the server remembers.
//
//   KULLSYNC_SIM_SEEDS=N (default 100), KULLSYNC_SIM_SEED=S replays one.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "harness.hpp"
#include "sim_server.hpp"
#include "kullsync/common/shoot_table.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/server/server.hpp"

using namespace kullsync;
using namespace kullsync::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* url = "ws://sync.sim/ws";

struct device {
  std::string user;
  std::string id;
  client_engine engine;
  std::shared_ptr<observations> seen = std::make_shared<observations>();
  recorder_actor recorder;
};

class world {
public:
  explicit world(uint64_t seed) : rng_(seed) {
    net_ = sim::spawn_sim_network(sim_.sys(), seed);
    server::server_config sc;
    sc.shards = 2;
    sc.node_epoch = "run0";
    server_.emplace(sim_, net_, url, sc);
    const std::pair<const char*, const char*> who[] = {
      {"u1", "mac"}, {"u1", "ipad"}, {"u2", "phone"}};
    for (auto& [u, d] : who) {
      device x;
      x.user = u;
      x.id = d;
      client_config cc;
      cc.connection.url = url;
      cc.connection.user_id = u;
      cc.connection.device_id = d;
      cc.reconnect.jitter = 0.2;
      sim::pin(cc, seed + devices_.size() + 1);
      x.engine = spawn_client(sim_.sys(), cc, spawn_memory_transport(sim_.sys(), net_));
      x.recorder = spawn_recorder(sim_.sys(), x.seen);
      x.engine.subscribe(caf::actor_cast<status_subscriber_actor>(x.recorder));
      x.engine.connect();
      devices_.push_back(std::move(x));
    }
    sim_.run();
  }

  ~world() {
    for (auto& d : devices_) {
      d.engine.stop();
      caf::anon_send_exit(d.recorder, caf::exit_reason::user_shutdown);
    }
    server_.reset();
    caf::anon_send_exit(net_, caf::exit_reason::user_shutdown);
    sim_.run();
  }

  void play() {
    std::uniform_int_distribution<int> pick{0, 9};
    for (int step = 0; step < 40; ++step) {
      sim_.advance(caf::timespan{std::uniform_int_distribution<int64_t>{0, 20000}(rng_) * 1ms});
      switch (pick(rng_)) {
        case 0: caf::anon_send(net_, cut_atom::value, cut_mode::clean); break;
        case 1: caf::anon_send(net_, cut_atom::value, cut_mode::half_open); break;
        case 2: caf::anon_send(net_, refuse_atom::value, rng_() % 2 == 0); break;
        case 3: server_->restart("run" + std::to_string(++runs_)); break;
        case 4: {
          auto& d = devices_[rng_() % devices_.size()];
          msg::shoot_progress p = random_shoot(rng_, 5);
          learn(d.user, p);
          d.engine.send_progress(p);
          break;
        }
        default: publish_random(); break;
      }
      sim_.run();
    }
  }

  void heal_and_check() {
    caf::anon_send(net_, refuse_atom::value, false);
    for (auto& d : devices_)
      d.engine.network_changed();
    sim_.advance(3min);
    // The backend publishes what it knows (a restarted server forgot it).
    // A running shoot's run is ended first: a late message may have started
    // a run the backend knows nothing of, which the truth's lower count
    // could not move back.
    for (auto& [user, t] : truth_) {
      for (auto& [id, p] : t.shoots) {
        if (!msg::is_terminal(p.status)) {
          auto end = p;
          end.status = msg::shoot_status::failed;
          post_shoot(user, end);
        }
        post_shoot(user, p);
      }
      if (t.credits)
        post_credit(user, *t.credits);
    }
    sim_.run();
    sim_.advance(6s);
    for (auto& d : devices_) {
      auto s = sim_.ask<sync_state>(d.engine.coordinator, get_atom::value);
      ASSERT_EQ(s.connection.state, connection_state::connected)
        << d.user << "/" << d.id << ": " << s.connection.error;
      auto snap = server_->remembered(d.user);
      EXPECT_EQ(s.credits, snap.credits ? std::optional<int64_t>{snap.credits->new_balance}
                                        : std::nullopt)
        << d.id;
      std::map<std::string, msg::shoot_progress> remembered;
      for (auto& p : snap.shoots)
        remembered[p.shoot_id] = p;
      EXPECT_TRUE(s.shoots == remembered)
        << d.id << ": " << s.shoots.size() << " shoots vs " << remembered.size()
        << " remembered by the server";
      std::map<std::string, msg::shoot_progress> active;
      for (auto& [id, p] : truth_[d.user].shoots)
        if (!msg::is_terminal(p.status))
          active[id] = p;
      EXPECT_TRUE(s.shoots == active) << d.id << " differs from the backend";
      std::set<std::string> devs, expected;
      for (auto& x : s.devices)
        devs.insert(x.device_id);
      for (auto& x : snap.devices)
        expected.insert(x.device_id);
      // Every device is connected now: each knows the user's devices as the
      // server does (an empty list, as the deployed app showed, fails).
      EXPECT_TRUE(devs == expected && devs.count(d.id))
        << d.id << " knows " << devs.size() << " devices, the server " << expected.size();
      auto& st = d.seen->statuses;
      for (size_t i = 1; i < st.size(); ++i)
        if (st[i - 1].status.state != st[i].status.state) {
          EXPECT_TRUE(is_legal_transition(st[i - 1].status.state, st[i].status.state));
        }
    }
    EXPECT_EQ(bad_http_, 0u);
  }

private:
  void post_shoot(const std::string& user, const msg::shoot_progress& p) {
    server_->post_shoot(user, p, [this](int status) { bad_http_ += status != 200; });
  }

  void post_credit(const std::string& user, int64_t balance) {
    server_->post_credits(user, balance, [this](int status) { bad_http_ += status != 200; });
  }

  /// What the backend knows of a shoot: its latest event, by the rule the
  /// server and the clients follow (a running shoot's count never goes back).
  void learn(const std::string& user, const msg::shoot_progress& p) {
    auto& shoots = truth_[user].shoots;
    auto i = shoots.find(p.shoot_id);
    if (i == shoots.end() || !shoot_table::is_stale(i->second, 0, p, 0))
      shoots[p.shoot_id] = p;
  }

  void publish_random() {
    auto user = rng_() % 2 == 0 ? "u1" : "u2";
    if (rng_() % 3 == 0) {
      auto bal = static_cast<int64_t>(rng_() % 5000);
      truth_[user].credits = bal;
      post_credit(user, bal);
    } else {
      auto p = random_shoot(rng_, 5);
      learn(user, p);
      post_shoot(user, p);
    }
  }

  sim_system sim_;
  std::mt19937_64 rng_;
  sim_network_actor net_;
  std::optional<sim_server> server_;
  uint64_t runs_ = 0;
  std::vector<device> devices_;
  std::map<std::string, peer_truth> truth_;
  uint64_t bad_http_ = 0;
};

} // namespace

TEST(server_sim, clients_converge_to_the_server_on_every_seed) {
  log::set_level("off");
  for (auto seed : sim_seeds(100)) {
    SCOPED_TRACE("seed " + std::to_string(seed) + "; replay: " + replay_command(seed));
    world w{seed};
    w.play();
    w.heal_and_check();
    if (::testing::Test::HasFailure()) {
      std::cerr << "FAILED seed " << seed << "; replay: " << replay_command(seed) << "\n";
      break;
    }
  }
}

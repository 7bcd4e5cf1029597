// A hub that drains, in virtual time: it closes its sockets a quota at a
// time, a socket that joins it is closed with 1001 like the others and
// never counted as left, and an undrain lets the next one stay.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "harness.hpp"
#include "kullsync/log.hpp"
#include "server_actors.hpp"
#include "sim_server.hpp"

using namespace kullsync;
using namespace kullsync::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* url = "ws://drain.sim/ws";

class hub_drain : public ::testing::Test {
protected:
  hub_drain() {
    log::set_level("off");
    net_ = sim::spawn_sim_network(sim_.sys(), 1);
    server::server_config sc;
    sc.shards = 1;
    server_.emplace(sim_, net_, url, sc);
    // Frames take 200 ms: a socket told to close is still there a while.
    caf::anon_send(net_, faults_atom::value,
                   link_faults{0, 0, std::chrono::milliseconds{200},
                               std::chrono::milliseconds{200}});
  }

  ~hub_drain() override {
    for (auto& e : engines_)
      e.stop();
    sim_.advance(3s);
    server_.reset();
    caf::anon_send_exit(net_, caf::exit_reason::user_shutdown);
    sim_.run();
  }

  const server::hub_actor& hub() { return server_->handles().env->hubs.front(); }

  /// The hub closes up to `quota` more sockets; how many it still has that
  /// were not told to close.
  uint64_t drain(uint32_t quota) {
    return sim_.ask<uint64_t>(hub(), server::drain_atom::value, quota);
  }

  client_engine connect(const std::string& device) {
    client_config cc;
    cc.connection.url = url;
    cc.connection.user_id = "u1";
    cc.connection.device_id = device;
    sim::pin(cc, 1);
    auto e = spawn_client(sim_.sys(), cc, spawn_memory_transport(sim_.sys(), net_));
    engines_.push_back(e);
    e.connect();
    return e;
  }

  connection_status status(const client_engine& e) {
    return sim_.ask<sync_state>(e.coordinator, get_atom::value).connection;
  }

  sim_system sim_;
  sim_network_actor net_;
  std::optional<sim_server> server_;
  std::vector<client_engine> engines_;
};

TEST_F(hub_drain, closes_a_quota_at_a_time_and_a_socket_that_joins_at_once) {
  auto first = connect("mac");
  sim_.advance(1s);
  ASSERT_EQ(status(first).state, connection_state::connected);
  EXPECT_EQ(drain(0), 1u) << "one socket, not told yet";
  EXPECT_EQ(drain(1), 0u) << "told: none left";
  // The hub drains (the node's flag is not set here, so the acceptor takes
  // the next socket and its join reaches the hub).
  auto second = connect("ipad");
  // From its join to its leaving (its close on the wire), it is never a
  // socket not told to close.
  uint64_t most_left = 0;
  for (int i = 0; i < 150; ++i) {
    sim_.advance(10ms);
    most_left = std::max(most_left, drain(0));
  }
  EXPECT_EQ(most_left, 0u) << "a socket that joined while draining is told at once";
  auto s = status(second);
  EXPECT_NE(s.state, connection_state::connected);
  EXPECT_NE(s.error.find("1001"), std::string::npos) << s.error;
}

TEST_F(hub_drain, after_an_undrain_a_socket_that_joins_stays) {
  EXPECT_EQ(drain(0), 0u);
  caf::anon_send(hub(), server::undrain_atom::value);
  sim_.run();
  auto e = connect("mac");
  sim_.advance(2s);
  EXPECT_EQ(status(e).state, connection_state::connected);
  EXPECT_EQ(drain(0), 1u);
}

} // namespace

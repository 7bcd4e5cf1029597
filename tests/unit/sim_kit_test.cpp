// The simulation kit as a test engineer uses it: public headers only (no
// tests/support), a client engine and the real server on a seeded memory
// network, a race forced, and the same seed giving the same run.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <caf/send.hpp>

#include "kullsync/client/engine.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/testing/sim_network.hpp"
#include "kullsync/testing/sim_server.hpp"
#include "kullsync/testing/sim_system.hpp"
#include "kullsync/transports/memory_network.hpp"

using namespace kullsync;

namespace {

constexpr const char* url = "ws://sim.test:5000/ws";

/// One run: a v2 device sends an update, and the server restarts (closing
/// every socket with 1001 first) while the update is on the wire. Returns
/// what the device heard, in order.
std::vector<std::string> race(uint64_t seed) {
  log::set_level("warn");
  sim::sim_system sim;
  auto net = sim::spawn_sim_network(sim.sys(), seed);
  std::vector<std::string> heard;
  {
    sim::sim_server server{sim, net, url};
    client_config cfg;
    cfg.connection.url = url;
    cfg.connection.user_id = "u1";
    cfg.connection.device_id = "phone";
    sim::pin(cfg, seed);
    auto engine = spawn_client(sim.sys(), cfg, spawn_memory_transport(sim.sys(), net));
    auto record = make_message_callback(sim.sys(), [&](const msg::server_message& m) {
      heard.push_back(msg::encode(m));
    });
    engine.subscribe(msg::server_type::unknown, record);
    auto statuses = make_status_callback(sim.sys(), [&](const connection_status& st) {
      if (!st.error.empty())
        heard.push_back("status: " + st.error);
    });
    engine.subscribe(statuses);
    engine.connect();
    sim.advance(std::chrono::seconds{1});

    msg::shoot_progress p;
    p.shoot_id = "s1";
    p.status = msg::shoot_status::processing;
    p.processed_count = 7;
    p.total_count = 10;
    p.provider = "sim";
    // Every frame now takes 200 ms: the update is on the wire when the
    // server restarts (its sockets closed with 1001, then the links cut).
    caf::anon_send(net, faults_atom::value,
                   link_faults{0, 0, std::chrono::milliseconds{200},
                               std::chrono::milliseconds{200}});
    engine.send_progress(p, "m-1");
    sim.run();
    server.restart("0000000000000002", true);
    sim.advance(std::chrono::seconds{30});     // the engine reconnects, resends

    // Applied once: the server remembers it, and its stream numbered it once.
    auto kept = server.remembered("u1");
    EXPECT_EQ(kept.shoots.size(), 1u);
    EXPECT_EQ(server.stats().order_faults, 0u);
    engine.stop();
    sim.advance(cfg.connection.stop_timeout);
    caf::anon_send_exit(record, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(statuses, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
  sim.run();
  return heard;
}

size_t count_of(const std::vector<std::string>& heard, const std::string& part) {
  size_t n = 0;
  for (auto& h : heard)
    n += h.find(part) != std::string::npos ? 1 : 0;
  return n;
}

} // namespace

TEST(sim_kit, a_message_on_the_wire_when_the_server_restarts_is_applied_once) {
  auto heard = race(3);
  EXPECT_EQ(count_of(heard, "\"type\":\"ACK\""), 1u);
  EXPECT_EQ(count_of(heard, "\"id\":\"m-1\""), 1u);
  EXPECT_EQ(count_of(heard, "\"type\":\"SHOOT_PROGRESS\""), 1u) << "applied once";
  EXPECT_EQ(count_of(heard, "\"epoch\":\"0000000000000002"), 1u) << "by the new server";
  EXPECT_GE(count_of(heard, "\"type\":\"WELCOME\""), 2u) << "it reconnected";
  EXPECT_GE(count_of(heard, "closed 1001"), 1u) << "the restart's close frame came first";

}

TEST(sim_kit, the_same_seed_gives_the_same_run) {
  auto a = race(11);
  auto b = race(11);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

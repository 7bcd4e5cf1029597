// The engine's v2 side against the real server actors over the memory
// network: resume after a restart of the app from its store, the outbox
// while offline, snapshots after a server restart, and the file store.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "harness.hpp"
#include "sim_broker.hpp"
#include "sim_server.hpp"
#include "kullsync/client/store.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/server/server.hpp"

using namespace kullsync;
using namespace kullsync::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* url = "ws://sync.sim/ws";

class client_v2 : public ::testing::Test {
protected:
  client_v2() {
    log::set_level("off");
    net_ = sim::spawn_sim_network(sim_.sys(), 1);
    server::server_config sc;
    sc.shards = 1;
    sc.node_epoch = "n1";
    server_.emplace(sim_, net_, url, sc);
  }

  ~client_v2() override {
    for (auto& e : engines_)
      e.stop();
    server_.reset();
    caf::anon_send_exit(net_, caf::exit_reason::user_shutdown);
    sim_.run();
  }

  client_engine engine(std::shared_ptr<client_store> store, bool connect = true) {
    client_config cc;
    cc.connection.url = url;
    cc.connection.user_id = "u1";
    cc.connection.device_id = "mac";
    cc.wall_start_ms = sim_wall_start_ms;
    cc.store = std::move(store);
    auto e = spawn_client(sim_.sys(), cc, spawn_memory_transport(sim_.sys(), net_));
    engines_.push_back(e);
    if (connect)
      e.connect();
    sim_.run();
    return e;
  }

  /// An engine for u1/mac on `at`, not connected yet.
  client_engine spawn_at(const std::string& at, size_t queue_limit = 256) {
    client_config cc;
    cc.connection.url = at;
    cc.connection.user_id = "u1";
    cc.connection.device_id = "mac";
    cc.connection.offline_queue_limit = queue_limit;
    cc.wall_start_ms = sim_wall_start_ms;
    auto e = spawn_client(sim_.sys(), cc, spawn_memory_transport(sim_.sys(), net_));
    engines_.push_back(e);
    return e;
  }

  void stop(const client_engine& e) {
    e.stop();
    sim_.run();
  }

  void publish_credits(int64_t balance) {
    server_->post_credits("u1", balance, [](int status) { EXPECT_EQ(status, 200); });
    sim_.run();
  }

  sync_state state(const client_engine& e) {
    return sim_.ask<sync_state>(e.coordinator, get_atom::value);
  }

  static msg::shoot_progress shoot(const std::string& id, int64_t done) {
    msg::shoot_progress p;
    p.shoot_id = id;
    p.status = msg::shoot_status::processing;
    p.processed_count = done;
    p.total_count = 10;
    return p;
  }

  sim_system sim_;
  sim_network_actor net_;
  std::optional<sim_server> server_;
  std::vector<client_engine> engines_;
};

TEST_F(client_v2, connects_with_v2_and_takes_a_snapshot_first) {
  publish_credits(40);
  auto e = engine(nullptr);
  auto s = state(e);
  EXPECT_EQ(s.connection.protocol, "kull.v2");
  EXPECT_EQ(s.stream.epoch.rfind("n1.", 0), 0u) << s.stream.epoch;
  EXPECT_EQ(s.stream.seq, 1u);
  EXPECT_FALSE(s.stream.recovered);
  EXPECT_EQ(s.stream.resyncs, 1u);
  EXPECT_EQ(s.credits, 40);
}

TEST_F(client_v2, an_app_restarted_from_its_store_resumes_where_it_saved) {
  auto store = std::make_shared<memory_store>();
  auto a = engine(store);
  publish_credits(1);
  publish_credits(2);
  sim_.advance(2s); // saved
  stop(a);
  publish_credits(3);
  publish_credits(4);
  publish_credits(5);
  auto b = engine(store, false);
  // Before it connects, it shows what it saved.
  EXPECT_EQ(state(b).credits, 2);
  EXPECT_EQ(state(b).stream.seq, 2u);
  b.connect();
  sim_.run();
  auto s = state(b);
  EXPECT_TRUE(s.stream.recovered);
  EXPECT_EQ(s.stream.replayed, 3u);
  EXPECT_EQ(s.stream.seq, 5u);
  EXPECT_EQ(s.credits, 5);
}

// PROTOCOL.md: "sees every message of its stream exactly once". A stop()
// within `save_every` of the last message saves the position that far: the
// restarted app is not replayed what it already applied.
TEST_F(client_v2, a_stop_saves_the_position_applied_since_the_last_save) {
  auto store = std::make_shared<memory_store>();
  auto a = engine(store);
  publish_credits(1);
  sim_.advance(2s); // saved at 1
  publish_credits(2);
  publish_credits(3); // applied, not saved yet
  stop(a);
  auto b = engine(store, false);
  EXPECT_EQ(state(b).stream.seq, 3u);
  EXPECT_EQ(state(b).credits, 3);
  b.connect();
  sim_.run();
  auto s = state(b);
  EXPECT_TRUE(s.stream.recovered);
  EXPECT_EQ(s.stream.replayed, 0u);
  EXPECT_EQ(s.stream.seq, 3u);
}

// A SNAPSHOT is a user's whole state: megabytes when its shoots carry long
// error messages. The engine reads it (past the 1 MiB it used to refuse, at
// every connect, with 1009).
TEST_F(client_v2, a_snapshot_of_megabytes_is_read) {
  for (int i = 0; i < 30; ++i) {
    auto p = shoot("s" + std::to_string(i), 1);
    p.error_message = std::string(40 * 1024, 'e');
    server_->post_shoot("u1", p, [](int status) { EXPECT_EQ(status, 200); });
  }
  sim_.run();
  auto e = engine(nullptr);
  auto s = state(e);
  EXPECT_EQ(s.connection.state, connection_state::connected);
  EXPECT_EQ(s.shoots.size(), 30u);
  EXPECT_EQ(s.stream.seq, 30u);
}

TEST_F(client_v2, progress_sent_offline_is_delivered_once_and_acknowledged) {
  auto store = std::make_shared<memory_store>();
  auto e = engine(store, false);
  e.send_progress(shoot("s1", 1));
  e.send_progress(shoot("s1", 2)); // replaces the unsent one
  e.send_progress(shoot("s2", 5));
  sim_.run();
  EXPECT_EQ(state(e).stream.outbox, 2u);
  ASSERT_TRUE(store->load_outbox());
  EXPECT_EQ(store->load_outbox()->messages.size(), 2u);
  e.connect();
  sim_.run();
  auto s = state(e);
  EXPECT_EQ(s.stream.outbox, 0u);
  EXPECT_EQ(s.stream.seq, 2u); // one SHOOT_PROGRESS each
  EXPECT_EQ(s.shoots.at("s1").processed_count, 2);
  EXPECT_EQ(store->load_outbox()->messages.size(), 0u);
}

namespace {

/// Every ACK and NACK an engine passes on, as "ACK id" / "NACK id code".
message_subscriber_actor spawn_outcomes(caf::actor_system& sys,
                                        std::shared_ptr<std::vector<std::string>> seen) {
  return sys.spawn([seen]() -> message_subscriber_actor::behavior_type {
    return {[=](inbound_atom, const inbound_batch& xs) {
      for (auto& m : xs) {
        if (auto* a = std::get_if<msg::ack>(&m.body))
          seen->push_back("ACK " + a->id);
        if (auto* n = std::get_if<msg::nack>(&m.body))
          seen->push_back("NACK " + n->id.value_or("null") + " " + std::string{to_string(n->code)});
      }
    }};
  });
}

/// What an engine's ACK and NACK subscribers hear.
struct outcomes {
  std::shared_ptr<std::vector<std::string>> seen = std::make_shared<std::vector<std::string>>();
  message_subscriber_actor rec;

  outcomes(caf::actor_system& sys, const client_engine& e) : rec(spawn_outcomes(sys, seen)) {
    e.subscribe(msg::server_type::ack, rec);
    e.subscribe(msg::server_type::nack, rec);
  }
  ~outcomes() { caf::anon_send_exit(rec, caf::exit_reason::user_shutdown); }
};

} // namespace

// The app follows each message by its own id to one end: an ACK, or a NACK
// (the server's, or the engine's own: replaced before it was sent, or no
// room). What was taken is never dropped for a newcomer.
TEST_F(client_v2, each_message_ends_in_one_ack_or_nack_with_the_apps_id) {
  auto e = spawn_at(url, 2);
  outcomes told{sim_.sys(), e};
  auto& seen = told.seen;
  sim_.run();
  e.send_progress(shoot("a", 1), "app-a1");
  e.send_progress(shoot("a", 2), "app-a2"); // replaces app-a1, not sent yet
  e.send_progress(shoot("b", 1), "app-b1");
  e.send_progress(shoot("c", 1), "app-c1"); // no room: a2 and b1 wait
  e.send_progress(shoot("d", 1), std::string(65, 'x'));
  sim_.run();
  auto s = state(e);
  EXPECT_EQ(s.stream.outbox, 2u);
  EXPECT_EQ(s.stream.outbox_dropped, 1u);
  e.connect();
  sim_.run();
  std::vector<std::string> expected{"NACK app-a1 superseded", "NACK app-c1 outbox_full",
                                    "NACK " + std::string(64, 'x') + " invalid",
                                    "ACK app-a2", "ACK app-b1"};
  EXPECT_EQ(*seen, expected);
  s = state(e);
  EXPECT_EQ(s.stream.outbox, 0u);
  EXPECT_EQ(s.shoots.at("a").processed_count, 2);
  EXPECT_EQ(s.shoots.count("b"), 1u);
  EXPECT_EQ(s.shoots.count("c"), 0u);
}

// A NACK that says "retry later" is not an end: the engine sends the
// message again, and the app hears only of its ACK.
TEST_F(client_v2, a_retry_later_nack_is_not_passed_on_and_the_ack_is) {
  auto broker = spawn_sim_broker(sim_.sys(), {1, 1000, broker_mutation::none});
  server::server_config sc;
  sc.shards = 1;
  sc.node_epoch = "n2";
  sc.cluster.broker = broker;
  sc.cluster.node_id = "n2";
  std::string other = "ws://cluster.sim/ws";
  std::optional<sim_server> node;
  node.emplace(sim_, net_, other, sc);
  auto e = spawn_at(other);
  outcomes told{sim_.sys(), e};
  auto& seen = told.seen;
  e.connect();
  sim_.advance(1s);
  ASSERT_EQ(state(e).connection.protocol, "kull.v2");
  caf::anon_send(broker, outage_atom::value, true);
  e.send_progress(shoot("s1", 1), "app-1");
  sim_.run();
  EXPECT_EQ(state(e).stream.deferred, 1u) << "the server did not say 'retry later'";
  EXPECT_TRUE(seen->empty()) << seen->front();
  caf::anon_send(broker, outage_atom::value, false);
  sim_.advance(11s); // the ack timeout: sent again
  EXPECT_EQ(*seen, std::vector<std::string>{"ACK app-1"});
  e.stop();
  node.reset();
  caf::anon_send_exit(broker, caf::exit_reason::user_shutdown);
  sim_.run();
}

namespace {

/// Sets `*down` once `who` has ended. The watcher lives while its handle does.
caf::actor watch_end(caf::actor_system& sys, const connection_actor& who,
                     std::shared_ptr<bool> down) {
  return sys.spawn([who, down](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(who);
    self->set_down_handler([down](caf::down_msg&) { *down = true; });
    return {[](caf::exit_msg&) {}};
  });
}

} // namespace

// stop() waits for a close only where a link exists: waiting for a token
// (a provider that never answers) it ends at once, without stop_timeout.
TEST_F(client_v2, a_stop_while_waiting_for_a_token_ends_at_once) {
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  auto tokens = sim_.sys().spawn([held](token_provider_actor::pointer self)
                                   -> token_provider_actor::behavior_type {
    return {[=](token_atom) -> caf::result<std::string> {
      held->push_back(self->make_response_promise());
      return caf::delegated<std::string>{};
    }};
  });
  client_config cc;
  cc.connection.url = url;
  cc.connection.user_id = "u1";
  cc.connection.device_id = "mac";
  auto e = spawn_client(sim_.sys(), cc, spawn_memory_transport(sim_.sys(), net_), {}, tokens);
  auto down = std::make_shared<bool>(false);
  auto watcher = watch_end(sim_.sys(), e.connection, down);
  e.connect();
  sim_.run();
  ASSERT_EQ(held->size(), 1u) << "the dial did not ask for a token";
  e.stop();
  sim_.run();
  EXPECT_TRUE(*down) << "stop() waited for a close with no link to close";
  held->clear();
  for (auto h : {caf::actor_cast<caf::actor>(tokens), watcher})
    caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
  sim_.run();
}

// While stop() waits for the server's answer to its close, connect() does
// not dial again.
TEST_F(client_v2, connect_after_stop_dials_nothing) {
  auto e = spawn_at(url);
  e.connect();
  sim_.run();
  ASSERT_EQ(state(e).connection.state, connection_state::connected);
  link_faults slow;
  slow.min_delay = 100ms;
  caf::anon_send(net_, faults_atom::value, slow);
  sim_.run();
  auto dials = sim_.ask<network_stats>(net_, stats_atom::value).dials;
  auto down = std::make_shared<bool>(false);
  auto watcher = watch_end(sim_.sys(), e.connection, down);
  sim_.run();
  e.stop();
  e.connect();
  sim_.advance(3s);
  EXPECT_TRUE(*down);
  EXPECT_EQ(sim_.ask<network_stats>(net_, stats_atom::value).dials, dials);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  sim_.run();
}

TEST_F(client_v2, a_server_restart_is_a_new_epoch_and_a_snapshot) {
  auto e = engine(nullptr);
  publish_credits(7);
  auto before = state(e).stream;
  server_->restart("n2");
  publish_credits(9);
  e.network_changed();
  sim_.advance(2min);
  auto s = state(e);
  ASSERT_EQ(s.connection.state, connection_state::connected);
  EXPECT_NE(s.stream.epoch, before.epoch);
  EXPECT_EQ(s.stream.epoch.rfind("n2.", 0), 0u);
  EXPECT_FALSE(s.stream.recovered);
  EXPECT_EQ(s.stream.resyncs, before.resyncs + 1);
  EXPECT_EQ(s.credits, 9);
}

TEST(client_store, a_file_store_keeps_the_stream_and_the_outbox) {
  auto path = std::string{::testing::TempDir()} + "kullsync-store-test.json";
  std::remove(path.c_str());
  {
    auto st = make_file_store(path);
    EXPECT_FALSE(st->load_stream());
    saved_stream s;
    s.epoch = "e1";
    s.seq = 12;
    s.state.seq = 12;
    s.state.shoots.push_back({});
    s.state.shoots.back().shoot_id = "s1";
    s.state.shoots.back().processed_count = 3;
    st->save_stream(s);
    saved_outbox o;
    o.id_prefix = "mac-x";
    o.next_id = 4;
    auto m = msg::make_update_progress(s.state.shoots.back());
    m.id = "mac-x-4";
    o.messages.push_back(m);
    st->save_outbox(o);
  }
  auto st = make_file_store(path);
  auto s = st->load_stream();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->epoch, "e1");
  EXPECT_EQ(s->seq, 12u);
  ASSERT_EQ(s->state.shoots.size(), 1u);
  EXPECT_EQ(s->state.shoots[0].processed_count, 3);
  auto o = st->load_outbox();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->id_prefix, "mac-x");
  EXPECT_EQ(o->next_id, 4u);
  ASSERT_EQ(o->messages.size(), 1u);
  EXPECT_EQ(o->messages[0].id, std::optional<std::string>{"mac-x-4"});
  // A damaged file loads as nothing: the engine then starts with a snapshot.
  std::ofstream{path} << "{\"stream\":{\"epoch\":5}";
  EXPECT_FALSE(make_file_store(path)->load_stream());
  std::remove(path.c_str());
}

} // namespace

TEST_F(client_v2, telemetry_counts_what_the_link_went_through) {
  auto e = engine(nullptr);
  auto t0 = sim_.ask<client_telemetry>(e.connection, get_atom::value, telemetry_atom::value);
  EXPECT_EQ(t0.dials, 1u);
  EXPECT_EQ(t0.connects, 1u);
  EXPECT_EQ(t0.reconnects, 0u);
  EXPECT_EQ(t0.snapshots, 1u); // a first connect resyncs from a SNAPSHOT
  e.send_progress(shoot("s1", 3));
  sim_.run();
  // A clean cut: the engine redials after its first backoff (1 s) and resumes.
  caf::anon_send(net_, cut_atom::value, cut_mode::clean);
  sim_.advance(3s);
  auto t = sim_.ask<client_telemetry>(e.connection, get_atom::value, telemetry_atom::value);
  EXPECT_EQ(t.dials, 2u);
  EXPECT_EQ(t.connects, 2u);
  EXPECT_EQ(t.reconnects, 1u);
  EXPECT_EQ(t.time_to_live.count, 1u);
  EXPECT_GE(t.time_to_live.max, 1000); // the backoff, in virtual time
  EXPECT_LT(t.time_to_live.max, 2000);
  EXPECT_EQ(t.attempts.count, 1u);
  EXPECT_EQ(t.attempts.max, 1);
  EXPECT_EQ(t.ack_rtt.count, 1u);
  EXPECT_EQ(t.resumes, 1u);
  EXPECT_EQ(t.queue_depth, 0u);
  // The state the subscribers see carries it too.
  EXPECT_EQ(state(e).telemetry.reconnects, 1u);
  // A chosen disconnect is not a loss.
  e.disconnect();
  sim_.run();
  e.connect();
  sim_.run();
  t = sim_.ask<client_telemetry>(e.connection, get_atom::value, telemetry_atom::value);
  EXPECT_EQ(t.connects, 3u);
  EXPECT_EQ(t.reconnects, 1u);
}

TEST(histogram_counts, buckets_and_quantiles) {
  auto h = histogram_counts::with_bounds({10, 100, 1000});
  for (int64_t v : {1, 5, 50, 500, 5000})
    h.observe(v);
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{2, 1, 1, 1}));
  EXPECT_EQ(h.count, 5u);
  EXPECT_EQ(h.sum, 5556);
  EXPECT_EQ(h.max, 5000);
  EXPECT_EQ(h.quantile(0.0), 10);
  EXPECT_EQ(h.quantile(0.5), 100);
  EXPECT_EQ(h.quantile(1.0), 5000);
  EXPECT_EQ(histogram_counts::with_bounds({1}).quantile(0.5), 0);
}

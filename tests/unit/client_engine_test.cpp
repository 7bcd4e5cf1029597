// The client engine against a scripted v1 peer in virtual time, including a
// test for each defect of the legacy client listed in PROTOCOL.md.
#include <gtest/gtest.h>

#include <caf/send.hpp>

#include "harness.hpp"
#include "kullsync/client/store.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/memory_network.hpp"
#include "kullsync/transports/subprotocol.hpp"

using namespace kullsync;
using namespace kullsync::test;
using namespace std::chrono_literals;
using msg::shoot_status;

namespace {

std::vector<connection_state> states_of(const observations& o) {
  std::vector<connection_state> xs;
  for (auto& r : o.statuses)
    if (xs.empty() || xs.back() != r.status.state)
      xs.push_back(r.status.state);
  return xs;
}

/// A running shoot at `done` of `total` images.
msg::shoot_progress processing(const std::string& shoot, int64_t done, int64_t total) {
  msg::shoot_progress p;
  p.shoot_id = shoot;
  p.status = msg::shoot_status::processing;
  p.processed_count = done;
  p.total_count = total;
  return p;
}

} // namespace

TEST(client_engine, connects_and_shows_its_own_device) {
  harness h;
  h.engine.connect();
  h.sim.run();
  auto s = h.state();
  EXPECT_EQ(s.connection.state, connection_state::connected);
  ASSERT_EQ(s.devices.size(), 1u);
  EXPECT_EQ(s.devices[0].device_id, "dev-1");
  EXPECT_EQ(s.connection.url, sim_url);
}

// A URL that cannot be dialed is the app's mistake: failed at once, saying
// why (without the query, where a token may be), and never dialed (retrying
// it as a network fault took the whole schedule, minutes by default).
TEST(client_engine, a_url_it_cannot_dial_fails_at_once) {
  for (std::string url : {"http://sync.sim/ws", "ws://sync.sim:99999/ws?token=secret-token",
                          "wss://user:secret-token@sync.sim/ws", "not a url", ""}) {
    SCOPED_TRACE(url);
    auto cfg = default_sim_config();
    cfg.connection.url = url;
    harness h{cfg};
    h.engine.connect();
    h.sim.run();
    h.sim.advance(10min);
    auto s = h.status();
    EXPECT_EQ(s.state, connection_state::failed);
    EXPECT_NE(s.error.find("invalid URL"), std::string::npos) << s.error;
    EXPECT_EQ(s.error.find("secret-token"), std::string::npos) << s.error;
    EXPECT_EQ(h.net_stats().dials, 0u);
    h.engine.connect(); // again, or a network change: still failed, still no dial
    h.engine.network_changed();
    h.sim.run();
    h.sim.advance(10min);
    EXPECT_EQ(h.status().state, connection_state::failed);
    EXPECT_EQ(h.net_stats().dials, 0u);
  }
}

TEST(client_engine, progress_credit_and_prompt_reach_the_state) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.publish(progress_msg("s1", shoot_status::processing, 3, 12));
  h.publish(credit_msg(950, -50));
  h.publish(msg::make_server_message(msg::server_type::prompt_change,
                                     msg::prompt_change{"p1", msg::prompt_action::voted},
                                     1, "server", "u1"));
  auto s = h.state();
  ASSERT_EQ(s.shoots.count("s1"), 1u);
  EXPECT_DOUBLE_EQ(s.shoots["s1"].progress(), 0.25);
  EXPECT_EQ(s.credits, 950);
  ASSERT_TRUE(s.last_credit);
  EXPECT_EQ(s.last_credit->change, -50);
  ASSERT_TRUE(s.last_prompt);
  EXPECT_EQ(s.last_prompt->prompt_id, "p1");
  EXPECT_EQ(s.last_sync_ms, sim_wall_start_ms);
}

TEST(client_engine, a_burst_reaches_subscribers_in_order_and_in_batches) {
  harness h;
  h.engine.connect();
  h.sim.run();
  auto before = h.seen->messages.size();
  auto batches_before = h.seen->message_batches.size();
  // Published back to back: the frames pile up in the network, the engine
  // and its subscriber get them in a few batches instead of 1,000 messages.
  for (int i = 0; i < 1000; ++i)
    caf::anon_send(h.peer, publish_atom::value, std::string{"u1"},
                   progress_msg("s" + std::to_string(i % 7), shoot_status::processing,
                                i, 1000));
  h.sim.run();
  auto& got = h.seen->messages;
  ASSERT_EQ(got.size() - before, 1000u);
  for (int i = 0; i < 1000; ++i) {
    auto& p = std::get<msg::shoot_progress>(got[before + i].message.body);
    ASSERT_EQ(p.processed_count, i) << "out of order at " << i;
  }
  auto batches = h.seen->message_batches.size() - batches_before;
  EXPECT_LE(batches, 20u) << "the burst was not batched";
  auto s = h.state();
  ASSERT_EQ(s.shoots.size(), 7u);
  EXPECT_EQ(s.shoots["s5"].processed_count, 999);
}

TEST(client_engine, completed_shoot_disappears_exactly_after_linger) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.publish(progress_msg("s1", shoot_status::completed, 12, 12));
  h.sim.advance(4999ms);
  EXPECT_EQ(h.state().shoots.count("s1"), 1u);
  h.sim.advance(1ms);
  EXPECT_EQ(h.state().shoots.count("s1"), 0u);
}

TEST(client_engine, shoot_updated_after_completion_is_not_removed_early) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.publish(progress_msg("s1", shoot_status::failed, 1, 12));
  h.sim.advance(3s);
  h.publish(progress_msg("s1", shoot_status::processing, 2, 12)); // retried
  h.sim.advance(10s);
  EXPECT_EQ(h.state().shoots.count("s1"), 1u);
}

TEST(client_engine, sends_update_progress_and_sees_the_relay) {
  harness h;
  h.engine.connect();
  h.sim.run();
  auto p = processing("mine", 1, 4);
  p.provider = "local";
  h.engine.send_progress(p);
  h.sim.run();
  EXPECT_EQ(h.state().shoots.count("mine"), 1u);
  EXPECT_EQ(h.truth("u1").shoots.count("mine"), 1u);
}

// A v1 server accepts the socket and then closes it for a bad token (4002),
// as the deployed one does. v1 acknowledges nothing, so what the outbox
// sends is gone: it waits for the server's first frame, and keeps what
// was queued offline when the token is refused.
TEST(client_engine, a_v1_token_refused_after_accepting_keeps_the_outbox) {
  auto cfg = default_sim_config();
  cfg.connection.token = ":no-user"; // the peer refuses it: 4002
  auto store = std::make_shared<memory_store>();
  cfg.store = store;
  harness h{cfg};
  auto p = processing("queued", 1, 4);
  h.engine.send_progress(p);
  h.sim.run();
  h.engine.connect();
  h.sim.run();
  auto s = h.state();
  ASSERT_EQ(s.connection.state, connection_state::failed) << s.connection.error;
  EXPECT_EQ(s.connection.error, "invalid token");
  EXPECT_EQ(s.stream.outbox, 1u);
  ASSERT_TRUE(store->load_outbox());
  EXPECT_EQ(store->load_outbox()->messages.size(), 1u)
    << "the queued update went out on a refused link";
  // A link that takes the token (the device's first frame came) sends it.
  harness ok{default_sim_config()};
  ok.engine.send_progress(p);
  ok.sim.run();
  ok.engine.connect();
  ok.sim.run();
  EXPECT_EQ(ok.state().stream.outbox, 0u);
  EXPECT_EQ(ok.truth("u1").shoots.count("queued"), 1u);
}

TEST(client_engine, progress_sent_offline_goes_out_on_connect) {
  harness h;
  auto p = processing("queued", 1, 4);
  h.engine.send_progress(p);
  p.processed_count = 2; // the latest per shoot wins
  h.engine.send_progress(p);
  h.sim.run();
  h.engine.connect();
  h.sim.run();
  auto t = h.truth("u1");
  ASSERT_EQ(t.shoots.count("queued"), 1u);
  EXPECT_EQ(t.shoots["queued"].processed_count, 2);
}

TEST(client_engine, bad_and_unknown_frames_are_counted_not_fatal) {
  harness h;
  h.engine.connect();
  h.sim.run();
  msg::server_message unknown;
  unknown.type_name = "FUTURE_THING";
  unknown.body = msg::unknown_data{"{}"};
  h.publish(unknown);
  h.publish(progress_msg("s1", shoot_status::processing, 1, 2));
  auto s = h.state();
  EXPECT_EQ(s.unknown_messages, 1u);
  EXPECT_EQ(s.connection.state, connection_state::connected);
  EXPECT_EQ(s.shoots.size(), 1u);
}

// -- the legacy client's defects (PROTOCOL.md), each made impossible ---------------

TEST(legacy_defects, connected_is_never_reported_before_the_handshake) {
  harness h;
  caf::anon_send(h.net, refuse_atom::value, true);
  h.engine.connect();
  h.sim.advance(5min);
  for (auto& r : h.seen->statuses)
    EXPECT_NE(r.status.state, connection_state::connected);
  EXPECT_EQ(h.net_stats().open_links, 0u);
}

TEST(legacy_defects, backoff_grows_when_links_die_right_after_the_handshake) {
  // The legacy client reset its attempt counter at "connected", so a server
  // that accepts and drops at once kept it retrying every second forever.
  harness h;
  h.engine.connect();
  h.sim.run();
  std::vector<caf::timespan> delays;
  for (int i = 0; i < 12; ++i) {
    caf::anon_send(h.peer, peer_close_atom::value, uint16_t{1011});
    h.sim.run();
    auto st = h.status();
    if (st.state == connection_state::failed)
      break;
    ASSERT_EQ(st.state, connection_state::reconnecting);
    delays.push_back(st.retry_in);
    h.sim.advance(st.retry_in); // the retry connects, then is dropped again
  }
  std::vector<caf::timespan> expected{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s, 60s};
  EXPECT_EQ(delays, expected);
  EXPECT_EQ(h.status().state, connection_state::failed);
  EXPECT_EQ(h.status().error, "Max reconnection attempts reached");
}

TEST(legacy_defects, a_link_that_stays_up_resets_the_backoff) {
  harness h;
  h.engine.connect();
  h.sim.run();
  for (int i = 0; i < 3; ++i) {
    caf::anon_send(h.peer, peer_close_atom::value, uint16_t{1011});
    h.sim.run();
    h.sim.advance(h.status().retry_in);
  }
  h.sim.advance(6s); // longer than stable_after
  caf::anon_send(h.peer, peer_close_atom::value, uint16_t{1011});
  h.sim.run();
  EXPECT_EQ(h.status().attempt, 1u);
  EXPECT_EQ(h.status().retry_in, caf::timespan{1s});
}

// "1001 server going away (reconnect with jitter)": a stopping server closes
// every socket at once; without jitter all its clients would redial in the
// same instant. Other losses keep the deployed schedule exactly.
TEST(client_engine, a_server_going_away_is_redialed_with_jitter) {
  std::vector<caf::timespan> delays;
  for (uint64_t seed : {1, 2, 3}) {
    auto cfg = default_sim_config();
    cfg.reconnect.jitter_seed = seed; // jitter itself stays 0, the default
    harness h{cfg};
    h.engine.connect();
    h.sim.run();
    caf::anon_send(h.peer, peer_close_atom::value, uint16_t{1001});
    h.sim.run();
    ASSERT_EQ(h.status().state, connection_state::reconnecting);
    auto d = h.status().retry_in;
    EXPECT_GE(d, caf::timespan{500ms});
    EXPECT_LE(d, caf::timespan{1500ms});
    delays.push_back(d);
    h.sim.advance(d);
    ASSERT_EQ(h.status().state, connection_state::connected);
    caf::anon_send(h.peer, peer_close_atom::value, uint16_t{1011});
    h.sim.run();
    EXPECT_EQ(h.status().retry_in, caf::timespan{2s}) << "the schedule goes on as deployed";
  }
  EXPECT_NE(delays[0], delays[1]);
  EXPECT_NE(delays[1], delays[2]);
}

// A server that echoes kull.v2 and then says nothing is neither v2 (its
// first frame is WELCOME) nor v1 (its first is the device's own
// DEVICE_CONNECTED). Taken for v1 it would get the outbox without ids: a
// slow v2 server would apply again what it applied before the last link
// broke, and the messages would lose their acknowledgement. A lost link.
TEST(client_engine, a_server_that_echoes_v2_and_stays_silent_is_a_lost_link) {
  constexpr const char* mute_url = "ws://mute.sim/ws";
  auto cfg = default_sim_config();
  cfg.connection.url = mute_url;
  harness h{cfg};
  auto frames = std::make_shared<std::vector<std::string>>();
  using mute_actor = acceptor_actor::extend_with<transport_listener_actor>;
  auto mute = h.sim.sys().spawn([frames](mute_actor::pointer self) -> mute_actor::behavior_type {
    return {
      [=](accept_atom, accepted_link_actor end, std::string&, header_list&, std::string&) {
        self->send(end, attach_atom::value, caf::actor_cast<transport_listener_actor>(self),
                   uint64_t{1}, std::string{v2_subprotocol});
      },
      [=](opened_atom, uint64_t, const std::string&) {},
      [=](frame_atom, uint64_t, const frame_batch& fs) {
        frames->insert(frames->end(), fs.begin(), fs.end());
      },
      [=](closed_atom, uint64_t, uint16_t, const std::string&) {},
    };
  });
  caf::anon_send(h.net, listen_atom::value, std::string{mute_url},
                 caf::actor_cast<acceptor_actor>(mute));
  h.sim.run();
  auto p = processing("s1", 1, 2);
  h.engine.send_progress(p); // offline: kept with an id
  h.engine.connect();
  h.sim.run();
  h.sim.advance(5500ms); // past the welcome timeout (5 s), before the retry (1 s)
  auto s = h.state();
  EXPECT_EQ(s.connection.state, connection_state::reconnecting);
  EXPECT_NE(s.connection.error.find("WELCOME"), std::string::npos) << s.connection.error;
  EXPECT_EQ(s.stream.outbox, 1u) << "the outbox was given up";
  for (auto& f : *frames)
    EXPECT_EQ(f.find("UPDATE_PROGRESS"), std::string::npos) << "sent before a WELCOME: " << f;
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
}

// "4009 stream interrupted (reconnect at once and resume)" and "4008 rate
// limited (reconnect after backoff)": the server is up and asks for the
// device back. Again before the link proved stable, it backs off (4008
// always), but it never gives up as it would on a server that does not
// answer: a device that resent too much at once must not end up offline.
TEST(client_engine, a_server_asking_for_the_device_back_is_never_given_up) {
  for (uint16_t code : {uint16_t{4009}, uint16_t{4008}}) {
    harness h;
    h.engine.connect();
    h.sim.run();
    for (int i = 0; i < 15; ++i) {
      caf::anon_send(h.peer, peer_close_atom::value, code);
      h.sim.run();
      auto st = h.status();
      ASSERT_NE(st.state, connection_state::failed) << code << " gave up after " << i + 1;
      if (code == 4008) {
        ASSERT_EQ(st.state, connection_state::reconnecting) << "4008 backs off: " << i;
      }
      if (st.state == connection_state::reconnecting)
        h.sim.advance(st.retry_in);
      ASSERT_EQ(h.status().state, connection_state::connected) << code << ": " << i;
    }
  }
}

TEST(legacy_defects, half_open_link_is_detected_by_the_pong_deadline) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.sim.advance(1s);
  auto cut_at = h.sim.elapsed();
  caf::anon_send(h.net, cut_atom::value, cut_mode::half_open);
  h.sim.advance(45s);
  caf::timespan detected{0};
  for (auto& r : h.seen->statuses)
    if (r.at > cut_at && r.status.state == connection_state::reconnecting) {
      detected = r.at - cut_at;
      break;
    }
  ASSERT_GT(detected.count(), 0) << "half-open link never detected";
  EXPECT_LE(detected, caf::timespan{40s}); // ping interval + deadline
}

TEST(legacy_defects, a_second_subscriber_never_replaces_the_first) {
  harness h;
  std::vector<std::string> first, second;
  auto a = make_message_callback(h.sim.sys(), [&](const msg::server_message& m) {
    first.push_back(m.type_name);
  });
  auto b = make_message_callback(h.sim.sys(), [&](const msg::server_message& m) {
    second.push_back(m.type_name);
  });
  h.engine.subscribe(msg::server_type::shoot_progress, a);
  h.engine.subscribe(msg::server_type::shoot_progress, b);
  h.engine.connect();
  h.sim.run();
  h.publish(progress_msg("s1", shoot_status::processing, 1, 2));
  EXPECT_EQ(first, std::vector<std::string>{"SHOOT_PROGRESS"});
  EXPECT_EQ(second, first);
  h.engine.unsubscribe(a.address());
  h.sim.run();
  h.publish(progress_msg("s1", shoot_status::processing, 2, 2));
  EXPECT_EQ(first.size(), 1u);
  EXPECT_EQ(second.size(), 2u);
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
}

TEST(legacy_defects, pong_batch_and_short_device_shapes_are_understood) {
  harness h;
  h.engine.connect();
  h.sim.run();
  msg::batch b;
  b.messages.push_back(msg::make_pong(5));
  msg::device_connection d;
  d.device_id = "ipad-2";
  d.timestamp = 4;
  b.messages.push_back(msg::make_server_message(msg::server_type::device_connected,
                                                d, 5, "server", "u1"));
  auto seen_before = h.seen->messages.size();
  h.publish(msg::make_server_message(msg::server_type::batch, b, 6, std::nullopt));
  auto s = h.state();
  ASSERT_EQ(s.devices.size(), 2u);
  EXPECT_EQ(s.devices[1].device_id, "ipad-2");
  EXPECT_EQ(s.bad_frames, 0u);
  // Subscribers get the parts, not the envelope; an empty BATCH gives them
  // nothing at all.
  ASSERT_EQ(h.seen->messages.size(), seen_before + 2);
  EXPECT_EQ(h.seen->messages[seen_before].message.type, msg::server_type::pong);
  EXPECT_EQ(h.seen->messages[seen_before + 1].message.type,
            msg::server_type::device_connected);
  auto batches_before = h.seen->message_batches.size();
  h.publish(msg::make_server_message(msg::server_type::batch, msg::batch{}, 7,
                                     std::nullopt));
  EXPECT_EQ(h.seen->message_batches.size(), batches_before);
}

// -- commands -------------------------------------------------------------------------

TEST(client_engine, explicit_disconnect_never_reconnects) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.engine.disconnect();
  h.sim.advance(10min);
  EXPECT_EQ(h.status().state, connection_state::disconnected);
  EXPECT_EQ(states_of(*h.seen).back(), connection_state::disconnected);
  EXPECT_EQ(h.net_stats().dials, 1u);
}

TEST(client_engine, endpoint_change_redials_at_once) {
  harness h;
  h.engine.connect();
  h.sim.run();
  auto other = spawn_scripted_peer(h.sim.sys(), h.net, {"ws://staging.sim/ws"},
                                   sim_wall_start_ms);
  h.sim.run();
  h.engine.set_endpoint("ws://staging.sim/ws");
  h.sim.run();
  EXPECT_EQ(h.status().state, connection_state::connected);
  EXPECT_EQ(h.status().url, "ws://staging.sim/ws");
  EXPECT_EQ(h.net_stats().open_links, 1u);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
}

TEST(client_engine, invalid_endpoint_is_refused_and_link_kept) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.engine.set_endpoint("http://nope");
  h.sim.run();
  EXPECT_EQ(h.status().state, connection_state::connected);
  EXPECT_EQ(h.status().url, sim_url);
}

TEST(client_engine, network_changed_retries_at_once_and_revives_failed) {
  auto cfg = default_sim_config();
  cfg.reconnect.max_attempts = 2;
  harness h{cfg};
  caf::anon_send(h.net, refuse_atom::value, true);
  h.engine.connect();
  h.sim.advance(10s);
  EXPECT_EQ(h.status().state, connection_state::failed);
  caf::anon_send(h.net, refuse_atom::value, false);
  h.engine.network_changed();
  h.sim.run();
  EXPECT_EQ(h.status().state, connection_state::connected);
}

TEST(client_engine, token_goes_in_query_or_header) {
  auto cfg = default_sim_config();
  cfg.connection.token_in_header = true;
  harness h{cfg};
  h.engine.connect();
  h.sim.run();
  EXPECT_EQ(h.status().state, connection_state::connected);
  EXPECT_EQ(h.truth("u1").devices.count("dev-1"), 1u);
}

TEST(client_engine, server_rejecting_the_token_fails_without_retrying) {
  // 4002 says "do not retry with this token": the engine stops instead of
  // dialing again for ever with the same token.
  auto cfg = default_sim_config();
  cfg.connection.token = ":no-user";
  harness h{cfg};
  h.engine.connect();
  h.sim.run();
  EXPECT_EQ(h.status().state, connection_state::failed);
  EXPECT_EQ(h.status().error, "invalid token");
  h.sim.advance(300s);
  EXPECT_EQ(h.status().state, connection_state::failed);
  EXPECT_EQ(h.status().attempt, 0u);
}

TEST(client_engine, keepalive_pings_every_interval) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.sim.advance(95s);
  auto s = h.state();
  EXPECT_EQ(s.connection.state, connection_state::connected);
  // Three PONGs: at 30, 60 and 90 s.
  EXPECT_EQ(s.last_sync_ms, sim_wall_start_ms + 90000);
}

namespace {

msg::user_state baseline(std::optional<int64_t> credits, std::vector<std::string> shoots) {
  msg::user_state b;
  b.user_id = "u1";
  if (credits)
    b.credits = msg::credit_update{"u1", *credits, 0, "state"};
  for (auto& id : shoots)
    b.shoots.push_back(std::get<msg::shoot_progress>(
      progress_msg(id, shoot_status::processing, 1, 10).body));
  return b;
}

} // namespace

TEST(client_engine, baseline_replaces_shoots_and_credits_while_down) {
  harness h;
  h.engine.load_state(baseline(700, {"a", "b"}));
  h.sim.run();
  auto s = h.state();
  EXPECT_EQ(s.credits, 700);
  EXPECT_EQ(s.shoots.size(), 2u);
  h.engine.load_state(baseline(650, {"b"}));
  h.sim.run();
  s = h.state();
  EXPECT_EQ(s.credits, 650);
  EXPECT_EQ(s.shoots.count("a"), 0u); // the server no longer has it
  EXPECT_EQ(s.shoots.count("b"), 1u);
}

// A baseline fetched right after a reconnect covers the downtime, but never
// undoes what the new link already delivered (it may be older than that).
TEST(client_engine, baseline_while_connected_fills_only_what_the_link_did_not_say) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.publish(credit_msg(900, -100));
  h.publish(progress_msg("live", shoot_status::processing, 5, 10));
  h.engine.load_state(baseline(1000, {"live", "missed"}));
  h.sim.run();
  auto s = h.state();
  EXPECT_EQ(s.credits, 900);                      // the socket's is newer
  EXPECT_EQ(s.shoots["live"].processed_count, 5); // idem
  EXPECT_EQ(s.shoots.count("missed"), 1u);        // published while down
  // A new link forgets what the old one said: its baseline applies in full.
  h.restart_peer();
  h.sim.run();
  h.sim.advance(2s);
  ASSERT_EQ(h.status().state, connection_state::connected);
  h.engine.load_state(baseline(800, {"other"}));
  h.sim.run();
  s = h.state();
  EXPECT_EQ(s.credits, 800);
  EXPECT_EQ(s.shoots.count("other"), 1u);
  EXPECT_EQ(s.shoots.count("live"), 0u);
}

namespace {

struct fetch_record {
  caf::timespan at;
  std::string url;
};

/// An HTTP client that answers every GET with one user state, and records
/// when it was asked what.
http_client_actor spawn_state_server(caf::actor_system& sys,
                                     std::shared_ptr<std::vector<fetch_record>> log) {
  return sys.spawn([log](http_client_actor::pointer self) -> http_client_actor::behavior_type {
    return {[=](fetch_atom, const std::string& method, const std::string& url,
                const std::string&) {
      log->push_back({self->clock().now().time_since_epoch(), method + " " + url});
      msg::user_state s;
      s.user_id = "u1";
      s.credits = msg::credit_update{"u1", 777, 0, "state"};
      s.shoots.push_back(std::get<msg::shoot_progress>(
        progress_msg("from-state", shoot_status::processing, 3, 9).body));
      return http_result{200, msg::to_json(s), {}};
    }};
  });
}

} // namespace

// The engine loads what the server remembers by itself: at start, every 5 s
// while the socket is down, once right after each (re)connect, and not while
// the link is up.
TEST(client_engine, loads_the_server_state_at_start_while_down_and_after_each_connect) {
  auto log = std::make_shared<std::vector<fetch_record>>();
  harness x{default_sim_config(), 1,
            [log](caf::actor_system& sys) { return spawn_state_server(sys, log); }};
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ(log->at(0).url, "GET http://sim.kull:5000/api/sync/state?token=u1:dev-1");
  auto s = x.state();
  EXPECT_EQ(s.credits, 777);
  EXPECT_EQ(s.shoots.count("from-state"), 1u);
  x.sim.advance(12s); // down: reloaded at 5 and 10 s
  EXPECT_EQ(log->size(), 3u);
  x.engine.connect();
  x.sim.run();
  ASSERT_EQ(x.status().state, connection_state::connected);
  EXPECT_EQ(log->size(), 4u); // right after the connect
  x.sim.advance(30s);
  EXPECT_EQ(log->size(), 4u); // not while connected
  x.restart_peer();
  x.sim.advance(2s);
  ASSERT_EQ(x.status().state, connection_state::connected);
  EXPECT_EQ(log->size(), 5u); // the new link is covered once
}

TEST(client_engine, a_running_shoot_never_counts_backwards) {
  harness h;
  h.engine.connect();
  h.sim.run();
  h.publish(progress_msg("s1", shoot_status::processing, 5, 12));
  h.publish(progress_msg("s1", shoot_status::processing, 3, 12)); // late
  EXPECT_EQ(h.state().shoots.at("s1").processed_count, 5);
  h.publish(progress_msg("s1", shoot_status::processing, 6, 12));
  EXPECT_EQ(h.state().shoots.at("s1").processed_count, 6);
}

TEST(client_engine, a_finished_shoot_is_not_revived_by_an_older_event) {
  harness h;
  h.engine.connect();
  h.sim.run();
  auto done = progress_msg("s1", shoot_status::completed, 12, 12);
  done.timestamp = sim_wall_start_ms + 2000;
  h.publish(done);
  auto late = progress_msg("s1", shoot_status::processing, 11, 12);
  late.timestamp = sim_wall_start_ms + 1000; // sent before the completion
  h.publish(late);
  EXPECT_EQ(h.state().shoots.at("s1").status, shoot_status::completed);
  // A newer one is a retry: a new run, counting from its own start.
  auto retry = progress_msg("s1", shoot_status::processing, 1, 12);
  retry.timestamp = sim_wall_start_ms + 3000;
  h.publish(retry);
  EXPECT_EQ(h.state().shoots.at("s1").status, shoot_status::processing);
  EXPECT_EQ(h.state().shoots.at("s1").processed_count, 1);
}

// A transport is the app's to bring: one that reports a link open twice is
// ignored (logged), not an assertion in the engine.
TEST(client_engine, a_link_reported_open_twice_is_ignored) {
  harness h;
  h.engine.connect();
  h.sim.run();
  auto before = h.state().connection;
  ASSERT_EQ(before.state, connection_state::connected);
  // As the transport does: the connection is its listener.
  caf::anon_send(caf::actor_cast<transport_listener_actor>(h.engine.connection),
                 opened_atom::value, before.link, std::string{});
  h.sim.run();
  auto after = h.state().connection;
  EXPECT_EQ(after.state, connection_state::connected);
  EXPECT_EQ(after.link, before.link);
  h.publish(credit_msg(900, -100));
  EXPECT_EQ(h.state().credits, 900);
}

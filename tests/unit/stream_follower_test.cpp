// The hub's pure parts, without actors: where a node stands in a user's
// stream (stream_follower) and which devices are where (user_registry).
#include <gtest/gtest.h>

#include <algorithm>

#include "hub/user_registry.hpp"
#include "stream/stream_follower.hpp"

using namespace kullsync;
using namespace kullsync::server;

namespace {

message_ptr numbered(uint64_t seq, const std::string& epoch = "e1") {
  return make_message("u", seq, epoch, "n1", R"({"type":"CREDIT_UPDATE"})");
}

stream_head head(uint64_t top, const std::string& epoch = "e1") {
  stream_head h;
  h.epoch = epoch;
  h.top = top;
  return h;
}

std::vector<uint64_t> acks(const stream_follower::effects& fx) {
  return {fx.acks.begin(), fx.acks.end()};
}

std::vector<uint64_t> applied(const stream_follower::effects& fx) {
  std::vector<uint64_t> out;
  for (auto& m : fx.apply)
    out.push_back(m->seq);
  return out;
}

/// A follower that has its head (e1 at `top`), generation 1.
stream_follower live_at(uint64_t top) {
  stream_follower f;
  f.follow(true, 1);
  bool replaced = false;
  f.on_head(1, head(top), true, &replaced);
  return f;
}

} // namespace

TEST(stream_follower, applies_in_order_each_once) {
  auto f = live_at(3);
  EXPECT_EQ(applied(f.on_message(numbered(4))), (std::vector<uint64_t>{4}));
  EXPECT_TRUE(applied(f.on_message(numbered(4))).empty()) << "delivered twice";
  EXPECT_TRUE(applied(f.on_message(numbered(2))).empty()) << "before the head";
  EXPECT_EQ(f.seq(), 4u);
}

TEST(stream_follower, a_gap_is_read_back_and_what_waited_follows) {
  auto f = live_at(3);
  auto fx = f.on_message(numbered(6));
  EXPECT_TRUE(fx.apply.empty());
  ASSERT_TRUE(fx.read);
  EXPECT_EQ(fx.read->since, 3u);
  EXPECT_EQ(fx.read->upto, 5u);
  EXPECT_TRUE(f.filling());
  // More arrives while the read is out: it waits.
  EXPECT_TRUE(f.on_message(numbered(7)).apply.empty());
  stream_range r;
  r.epoch = "e1";
  r.complete = true;
  r.messages = {numbered(4), numbered(5)};
  EXPECT_EQ(applied(f.on_range(fx.read->generation, r)), (std::vector<uint64_t>{4, 5, 6, 7}));
  EXPECT_FALSE(f.filling());
}

TEST(stream_follower, what_the_stream_no_longer_holds_resets) {
  auto f = live_at(3);
  auto fx = f.on_message(numbered(9));
  stream_range r;
  r.epoch = "e1";
  r.complete = false; // evicted
  auto after = f.on_range(fx.read->generation, r);
  EXPECT_NE(after.reset, nullptr);
  EXPECT_TRUE(after.apply.empty());
  // A read with a hole in it resets too.
  auto g = live_at(3);
  auto gx = g.on_message(numbered(7));
  r.complete = true;
  r.messages = {numbered(4), numbered(6)};
  EXPECT_NE(g.on_range(gx.read->generation, r).reset, nullptr);
}

// A record on the user's channel that no publish made (someone else wrote
// it), at a position past the stream's top: the read back of the gap before
// it is whole but ends short. Asking again would get the same answer for
// ever (a busy loop of script calls): the stream is followed afresh.
TEST(stream_follower, a_message_past_the_streams_top_resets_the_stream) {
  auto f = live_at(1);
  auto fx = f.on_message(numbered(5));
  ASSERT_TRUE(fx.read);
  stream_range r;
  r.epoch = "e1";
  r.complete = true; // (1, 4] clamped to the top, 1: nothing, and whole
  auto after = f.on_range(fx.read->generation, r);
  EXPECT_NE(after.reset, nullptr);
  EXPECT_FALSE(after.read) << "not asked again";
  EXPECT_TRUE(after.apply.empty()) << "the forged message is not applied";
}

TEST(stream_follower, another_epoch_resets_and_drops_the_acks) {
  auto f = live_at(3);
  f.on_receipt({5, "e1", false}, 42); // due at 5
  auto fx = f.on_message(numbered(4, "e2"));
  EXPECT_NE(fx.reset, nullptr);
  EXPECT_EQ(f.take_dropped_acks(), (std::vector<uint64_t>{42}));
}

TEST(stream_follower, late_messages_of_the_replaced_epoch_are_history) {
  auto f = live_at(3);
  bool replaced = false;
  f.follow(false, 9); // a resync: the broker failed over
  f.on_head(9, head(2, "e2"), false, &replaced);
  ASSERT_TRUE(replaced);
  f.on_receipt({4, "e1", false}, 42); // numbered before the failover
  auto fx = f.on_message(numbered(4, "e1")); // the old subscription, late
  EXPECT_EQ(fx.reset, nullptr);
  EXPECT_TRUE(fx.apply.empty());
  EXPECT_EQ(f.take_dropped_acks(), (std::vector<uint64_t>{42})); // resent by its device
  EXPECT_EQ(applied(f.on_message(numbered(3, "e2"))), (std::vector<uint64_t>{3}));
  EXPECT_NE(f.on_message(numbered(4, "e3")).reset, nullptr); // a change again
}

TEST(stream_follower, messages_before_the_head_wait_for_it) {
  stream_follower f;
  f.follow(true, 7);
  EXPECT_TRUE(f.on_message(numbered(2)).apply.empty());
  EXPECT_TRUE(f.on_message(numbered(3)).apply.empty());
  bool replaced = false;
  auto fx = f.on_head(7, head(2), true, &replaced);
  EXPECT_TRUE(replaced);
  EXPECT_EQ(applied(fx), (std::vector<uint64_t>{3})) << "2 is in the head";
}

TEST(stream_follower, answers_to_an_older_follow_are_ignored) {
  stream_follower f;
  f.follow(true, 1);
  f.follow(true, 2);
  bool replaced = true;
  f.on_head(1, head(5), true, &replaced);
  EXPECT_FALSE(replaced);
  EXPECT_FALSE(f.live());
  f.on_head(2, head(5), true, &replaced);
  EXPECT_TRUE(f.live());
  EXPECT_EQ(f.seq(), 5u);
}

TEST(stream_follower, a_resync_keeps_the_position_and_reads_what_was_missed) {
  auto f = live_at(3);
  f.follow(false, 2);
  bool replaced = true;
  auto fx = f.on_head(2, head(6), false, &replaced);
  EXPECT_FALSE(replaced) << "same epoch: what the node has stays";
  ASSERT_TRUE(fx.read);
  EXPECT_EQ(fx.read->since, 3u);
  EXPECT_EQ(fx.read->upto, 6u);
  // Another epoch replaces.
  f.follow(false, 3);
  f.on_head(3, head(1, "e2"), false, &replaced);
  EXPECT_TRUE(replaced);
  EXPECT_EQ(f.epoch(), "e2");
}

// The user's last socket left with an ACK not yet due: the hub forgets
// every ticket the follower held, due or dropped, and nothing stays behind.
TEST(stream_follower, a_dropped_follower_gives_back_every_ack_it_held) {
  auto f = live_at(3);
  f.on_receipt({5, "e1", false}, 7); // due at 5, not yet applied
  f.on_receipt({6, "e1", false}, 8);
  auto all = f.take_all_acks();
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<uint64_t>{7, 8}));
  EXPECT_TRUE(f.take_all_acks().empty());
  f.on_message(numbered(4));
  EXPECT_TRUE(acks(f.on_message(numbered(5))).empty()); // forgotten, not sent
}

// Receipts that came while a follow was out are settled by its head: due
// when the head covers them, dropped when numbered in another epoch.
TEST(stream_follower, a_head_settles_the_acks_that_waited_for_it) {
  stream_follower f;
  f.follow(true, 1);
  f.on_receipt({5, "e1", false}, 1);
  f.on_receipt({9, "e1", false}, 2); // past the head: waits for seq 9
  f.on_receipt({2, "e0", false}, 3); // an epoch the head does not serve
  bool replaced = false;
  auto fx = f.on_head(1, head(6), true, &replaced);
  EXPECT_EQ(acks(fx), (std::vector<uint64_t>{1}));
  EXPECT_EQ(f.take_dropped_acks(), (std::vector<uint64_t>{3}));
  EXPECT_EQ(f.take_all_acks(), (std::vector<uint64_t>{2}));
}

TEST(stream_follower, an_ack_comes_due_once_its_position_is_applied) {
  auto f = live_at(3);
  EXPECT_EQ(acks(f.on_receipt({3, "e1", false}, 1)), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(f.on_receipt({5, "e1", false}, 2).acks.empty());
  EXPECT_TRUE(f.on_message(numbered(4)).acks.empty());
  EXPECT_EQ(acks(f.on_message(numbered(5))), (std::vector<uint64_t>{2}));
  // Numbered in an epoch this node does not serve: reset.
  EXPECT_NE(f.on_receipt({9, "e2", false}, 3).reset, nullptr);
}

TEST(stream_follower, a_position_check_reads_a_lost_last_message) {
  auto f = live_at(3);
  EXPECT_TRUE(f.check_due(10'000, 2000));
  EXPECT_FALSE(f.check_due(11'000, 2000)) << "not again before the period";
  auto fx = f.on_check(1, head(4));
  ASSERT_TRUE(fx.read);
  EXPECT_EQ(fx.read->upto, 4u);
  auto g = live_at(3);
  EXPECT_NE(g.on_check(1, head(3, "e9")).reset, nullptr);
}

// -- user_registry -------------------------------------------------------------

namespace {

device_socket sock(const std::string& device) {
  device_socket s;
  s.device_id = device;
  return s;
}

} // namespace

TEST(user_registry, a_device_is_present_until_its_last_socket_anywhere_goes) {
  user_entry u;
  u.sockets.push_back(sock("mac"));
  u.sockets.push_back(sock("mac"));
  EXPECT_TRUE(device_here(u, "mac", &u.sockets[0]));
  EXPECT_FALSE(device_here(u, "mac", &u.sockets[0]) && device_here(u, "ipad", nullptr));
  u.remote_devices[{"n2", "ipad"}] = 5;
  EXPECT_TRUE(device_present(u, "ipad", nullptr));
  EXPECT_FALSE(device_here(u, "ipad", nullptr));
  auto all = devices_of(u);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].device_id, "mac");
  EXPECT_EQ(all[1].device_id, "ipad");
}

TEST(user_registry, presence_is_reconciled_with_what_the_broker_was_told) {
  user_entry u;
  u.sockets.push_back(sock("mac"));
  u.sockets.push_back(sock("ipad"));
  u.sockets.back().closing = true; // going: not announced
  u.presence.announced = {"old"};
  auto ops = presence_changes(u);
  EXPECT_EQ(ops, (std::vector<std::pair<std::string, bool>>{{"mac", true}, {"old", false}}));
}

TEST(user_registry, a_device_that_moves_is_told_once) {
  user_entry u;
  EXPECT_TRUE(track_remote(u, "n1", "mac", true, 1)) << "arrived";
  EXPECT_FALSE(track_remote(u, "n2", "mac", true, 2)) << "moved: still here";
  EXPECT_FALSE(track_remote(u, "n1", "mac", false, 3)) << "the old node's goodbye";
  EXPECT_TRUE(track_remote(u, "n2", "mac", false, 4)) << "gone for good";
}

TEST(user_registry, a_lost_presence_message_heals_from_the_broker_s_list) {
  user_entry u;
  u.sockets.push_back(sock("mac"));
  u.remote_devices[{"n2", "gone"}] = 1;
  auto diff = replace_remote(u, {{"n2", "ipad", 7}, {"me", "mac", 1}, {"n3", "mac", 2}}, "me");
  EXPECT_EQ(diff.left, (std::vector<std::string>{"gone"}));
  ASSERT_EQ(diff.arrived.size(), 1u) << "mac is here already";
  EXPECT_EQ(diff.arrived[0].first, "ipad");
  EXPECT_EQ(u.remote_devices.size(), 2u) << "this node's own entry is not remote";
}

TEST(user_registry, a_list_read_before_the_nodes_renewed_their_liveness_removes_nobody) {
  // Redis paused past the liveness keys' lifetime: a head read right after
  // lists none of the node n2's devices until n2 renews its key.
  user_entry u;
  u.remote_devices[{"n2", "ipad"}] = 1;
  auto diff = replace_remote(u, {{"n3", "mac", 2}}, "me", /*complete=*/false);
  EXPECT_TRUE(diff.left.empty()) << "not told that ipad left";
  ASSERT_EQ(diff.arrived.size(), 1u);
  EXPECT_EQ(diff.arrived[0].first, "mac");
  EXPECT_EQ(u.remote_devices.size(), 2u);
  diff = replace_remote(u, {{"n3", "mac", 2}}, "me"); // a liveness period later
  EXPECT_EQ(diff.left, (std::vector<std::string>{"ipad"})) << "gone for good now";
  EXPECT_TRUE(diff.arrived.empty());
}

TEST(user_registry, a_v2_socket_takes_each_position_once_and_in_order) {
  auto s = sock("mac");
  s.position = 5; // where it started (its WELCOME, or its replay's end)
  EXPECT_EQ(take_position(s, 6), position_verdict::send);
  EXPECT_EQ(s.position, 6u);
  EXPECT_EQ(take_position(s, 6), position_verdict::twice);
  EXPECT_EQ(take_position(s, 3), position_verdict::twice);
  EXPECT_EQ(take_position(s, 8), position_verdict::gap);
  EXPECT_EQ(s.position, 6u); // a refusal moves nothing
  EXPECT_EQ(take_position(s, 7), position_verdict::send);
  s.closing = true;
  EXPECT_EQ(take_position(s, 9), position_verdict::skip);
  auto waiting = sock("ipad");
  waiting.start = std::make_unique<join_request>();
  EXPECT_EQ(take_position(waiting, 1), position_verdict::skip); // its WELCOME covers it
}

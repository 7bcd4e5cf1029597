// The stream core's own bounds, which only a node alone has (Redis bounds
// its memory itself): the history's age and memory, the users it forgets,
// the dedup keys it keeps. The rules both implementations share are in the
// table of stream_cases_test.
#include <gtest/gtest.h>

#include "stream/stream_core.hpp"

using namespace kullsync::server;

namespace {

publish_request credit(const std::string& user, int64_t now, std::string key = {}) {
  publish_request r;
  r.user = user;
  r.origin = "n";
  r.frame = R"({"type":"CREDIT_UPDATE","data":{"x":")" + std::string(100, 'x') + R"("}})";
  r.numbered = true;
  r.state.field = "credits";
  r.dedup_key = std::move(key);
  r.now = now;
  return r;
}

} // namespace

TEST(stream_core, messages_leave_with_their_age) {
  stream_limits l;
  l.history_ttl_ms = 1000;
  stream_core c{"e", l};
  c.publish(credit("u", 0), nullptr);
  c.publish(credit("u", 600), nullptr);
  auto epoch = c.head("u", 600, {}).epoch;
  EXPECT_TRUE(c.read("u", epoch, 0, UINT64_MAX, 900).complete);
  EXPECT_FALSE(c.read("u", epoch, 0, UINT64_MAX, 1100).complete) << "1 is older than the ttl";
  EXPECT_TRUE(c.read("u", epoch, 1, UINT64_MAX, 1100).complete);
}

TEST(stream_core, past_the_memory_bound_the_oldest_messages_of_anyone_go) {
  stream_limits l;
  l.history_bytes = 20 * 400; // some twenty messages
  stream_core c{"e", l};
  c.publish(credit("idle", 0), nullptr); // the oldest, then nothing from this user
  for (int i = 1; i <= 200; ++i)
    c.publish(credit("busy", i), nullptr);
  auto s = c.stats();
  EXPECT_LE(s.history_bytes, l.history_bytes);
  EXPECT_GT(s.evicted, 150u);
  auto idle = c.head("idle", 300, {}).epoch;
  EXPECT_FALSE(c.read("idle", idle, 0, UINT64_MAX, 300).complete) << "the oldest went first";
  auto busy = c.head("busy", 300, {}).epoch;
  EXPECT_TRUE(c.read("busy", busy, 195, UINT64_MAX, 300).complete) << "the newest stay";
}

TEST(stream_core, idle_users_are_forgotten_unless_followed) {
  stream_limits l;
  l.history_ttl_ms = 1000;
  l.user_idle_ms = 5000;
  stream_core c{"e", l};
  c.publish(credit("gone", 0), nullptr);
  c.publish(credit("kept", 0), nullptr);
  auto before = c.head("gone", 0, {}).epoch;
  c.sweep(10'000, [](const std::string& user) { return user == "kept"; });
  EXPECT_EQ(c.stats().users_forgotten, 1u);
  EXPECT_EQ(c.head("kept", 10'000, {}).top, 1u);
  auto after = c.head("gone", 10'000, {});
  EXPECT_EQ(after.top, 0u) << "a forgotten stream starts again";
  EXPECT_NE(after.epoch, before) << "in a new epoch";
}

TEST(stream_core, dedup_keys_answer_for_their_lifetime_and_up_to_a_count) {
  stream_limits l;
  l.dedup_ttl_ms = 1000;
  l.dedup_per_user = 3;
  stream_core c{"e", l};
  EXPECT_FALSE(c.publish(credit("u", 0, "k1"), nullptr).duplicate);
  EXPECT_TRUE(c.publish(credit("u", 500, "k1"), nullptr).duplicate);
  EXPECT_FALSE(c.publish(credit("u", 1600, "k1"), nullptr).duplicate) << "past its lifetime";
  for (auto k : {"a", "b", "c"})
    c.publish(credit("u", 1700, k), nullptr);
  EXPECT_FALSE(c.publish(credit("u", 1700, "k1"), nullptr).duplicate)
    << "the oldest of more than 3 went";
  EXPECT_TRUE(c.publish(credit("u", 1700, "c"), nullptr).duplicate);
}

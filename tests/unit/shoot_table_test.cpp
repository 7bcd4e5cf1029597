// The active-shoots table's bounds: a capacity that evicts the shoot updated
// least recently, and shoots that stopped reporting.
#include <gtest/gtest.h>

#include "kullsync/common/shoot_table.hpp"

using namespace kullsync;

namespace {

msg::shoot_progress shoot(const std::string& id, int64_t count,
                          msg::shoot_status s = msg::shoot_status::processing) {
  msg::shoot_progress p;
  p.shoot_id = id;
  p.status = s;
  p.processed_count = count;
  p.total_count = 100;
  return p;
}

} // namespace

TEST(shoot_table, capacity_evicts_the_least_recently_updated) {
  shoot_table t;
  t.set_capacity(3);
  t.put(shoot("a", 1), 1);
  t.put(shoot("b", 1), 2);
  t.put(shoot("c", 1), 3);
  t.put(shoot("a", 2), 4); // a is now the newest
  t.put(shoot("d", 1), 5); // b goes
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.shoots().count("b"), 0u);
  EXPECT_EQ(t.shoots().at("a").processed_count, 2);
  EXPECT_EQ(t.evicted(), 1u);
  t.put(shoot("c", 2), 6); // an update of a known shoot evicts nothing
  EXPECT_EQ(t.evicted(), 1u);
  for (int i = 0; i < 1000; ++i)
    t.put(shoot("n" + std::to_string(i), 1), 10 + i);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.shoots().count("n999"), 1u);
}

TEST(shoot_table, drop_idle_removes_shoots_that_stopped_reporting) {
  shoot_table t;
  t.put(shoot("old", 1), 100);
  t.put(shoot("new", 1), 500);
  EXPECT_EQ(t.drop_idle(300), 1u);
  EXPECT_EQ(t.shoots().count("old"), 0u);
  EXPECT_EQ(t.shoots().count("new"), 1u);
  // The linger expiry of a dropped shoot is a no-op.
  auto v = t.put(shoot("done", 100, msg::shoot_status::completed), 600);
  ASSERT_TRUE(v);
  t.drop_idle(1000);
  EXPECT_FALSE(t.expire("done", *v));
  EXPECT_TRUE(t.empty());
}

TEST(shoot_table, a_stale_update_is_still_ignored) {
  shoot_table t;
  t.set_capacity(2);
  t.put(shoot("a", 5), 1);
  t.put(shoot("a", 3), 2);
  EXPECT_EQ(t.shoots().at("a").processed_count, 5);
}

// When a repeating line is logged again (log_throttle), and how many lines
// of one kind many actors may log (log_budget).
#include <gtest/gtest.h>

#include "kullsync/common/log_throttle.hpp"

TEST(log_throttle, once_per_interval) {
  kullsync::log_throttle t;
  EXPECT_TRUE(t.should_log(5, 100));
  EXPECT_FALSE(t.should_log(104, 100));
  EXPECT_TRUE(t.should_log(105, 100));
  t.reset();
  EXPECT_TRUE(t.should_log(106, 100));
}

// log_budget: at most N lines a window, the rest counted and said with the
// next line let through.
TEST(log_budget, lets_n_through_a_window_and_counts_the_rest) {
  kullsync::log_budget b{2, 1000};
  EXPECT_EQ(b.take(0), std::optional<uint64_t>{0});
  EXPECT_EQ(b.take(10), std::optional<uint64_t>{0});
  EXPECT_EQ(b.take(20), std::nullopt);
  EXPECT_EQ(b.take(999), std::nullopt);
  EXPECT_EQ(b.take(1000), std::optional<uint64_t>{2}) << "two held back, said now";
  EXPECT_EQ(b.take(1001), std::optional<uint64_t>{0});
  EXPECT_EQ(b.take(1002), std::nullopt);
}

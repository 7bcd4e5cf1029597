// When the broker cuts its links to a Redis instance (probe_watch.hpp): a
// link that stopped is cut at the third tick, as always; one that is behind
// but still reads is kept.
#include <gtest/gtest.h>

#include "probe_watch.hpp"

using namespace kullsync::broker;

namespace {

constexpr int64_t interval = 1000;

/// A probe sent at 10 s; ticks every second after it.
probe_watch sent_at_10s() {
  probe_watch p;
  p.send(10'000);
  return p;
}

probe_verdict at(const probe_watch& p, int64_t now, link_reads reads) {
  return judge(p, now, now - interval, reads, interval);
}

} // namespace

TEST(probe_watch, sends_when_no_probe_is_out) {
  probe_watch p;
  EXPECT_EQ(at(p, 1'000, {}), probe_verdict::send);
  p = sent_at_10s();
  p.back(10'400);
  EXPECT_EQ(at(p, 11'000, {}), probe_verdict::send);
  p = sent_at_10s();
  p.reset(); // its link went
  EXPECT_EQ(at(p, 13'000, {}), probe_verdict::send);
}

TEST(probe_watch, waits_within_the_patience) {
  auto p = sent_at_10s();
  EXPECT_EQ(at(p, 11'000, {}), probe_verdict::waiting);
  EXPECT_EQ(at(p, 12'000, {}), probe_verdict::waiting);
}

TEST(probe_watch, a_stuck_redis_is_cut_at_the_third_tick) {
  // Nothing read since the probe: its PUBLISH unanswered, the command link
  // silent (SIGSTOP, a long fork, a cut path).
  auto p = sent_at_10s();
  link_reads silent{9'900, 9'950};
  EXPECT_EQ(at(p, 12'740, silent), probe_verdict::waiting);
  EXPECT_EQ(at(p, 12'990, silent), probe_verdict::stopped); // a tick that drifted early
  EXPECT_EQ(at(p, 13'000, silent), probe_verdict::stopped);
}

TEST(probe_watch, a_command_link_answering_a_backlog_is_behind) {
  auto p = sent_at_10s();
  EXPECT_EQ(at(p, 13'000, {12'600, 9'000}), probe_verdict::behind);
  EXPECT_EQ(at(p, 20'000, {19'900, 9'000}), probe_verdict::behind);
  // It fell silent: cut once silent for the patience.
  EXPECT_EQ(at(p, 22'500, {19'900, 9'000}), probe_verdict::behind);
  EXPECT_EQ(at(p, 23'000, {19'900, 9'000}), probe_verdict::stopped);
}

TEST(probe_watch, once_published_the_subscriber_owes_the_probe) {
  auto p = sent_at_10s();
  p.answer(10'100);
  // The command link reads, the subscriber does not: the subscriber stopped.
  EXPECT_EQ(at(p, 13'000, {12'900, 9'000}), probe_verdict::stopped);
  // The subscriber delivers a backlog: behind.
  EXPECT_EQ(at(p, 13'000, {9'000, 12'950}), probe_verdict::behind);
}

TEST(probe_watch, reads_before_the_answer_do_not_count_for_the_subscriber) {
  auto p = sent_at_10s();
  p.answer(12'000); // the command link was behind until then
  EXPECT_EQ(at(p, 14'000, {13'900, 11'500}), probe_verdict::behind); // owed since 12 s
  EXPECT_EQ(at(p, 15'000, {14'900, 11'500}), probe_verdict::stopped);
}

TEST(probe_watch, a_new_probe_owes_nothing_of_the_last_ones_answer) {
  auto p = sent_at_10s();
  p.answer(10'100);
  p.back(10'200);
  p.send(11'000);
  // Owed by the command link again: it read at 13.5 s, so it is behind.
  EXPECT_EQ(at(p, 14'000, {13'500, 9'000}), probe_verdict::behind);
  EXPECT_EQ(at(p, 14'000, {9'000, 13'900}), probe_verdict::stopped);
}

TEST(probe_watch, judges_nothing_at_a_late_tick) {
  // This node was short of CPU for 4 s: what it did not read waits in its
  // sockets, so silence says nothing yet.
  auto p = sent_at_10s();
  EXPECT_EQ(judge(p, 14'000, 10'000, {9'000, 9'000}, interval), probe_verdict::waiting);
  EXPECT_EQ(judge(p, 15'000, 14'000, {9'000, 9'000}, interval), probe_verdict::stopped);
}

TEST(probe_watch, a_link_that_reads_but_never_brings_the_probe_back_is_cut_in_the_end) {
  auto p = sent_at_10s();
  p.answer(10'100);
  EXPECT_EQ(at(p, 39'000, {38'900, 38'950}), probe_verdict::behind);
  EXPECT_EQ(at(p, 40'000, {39'900, 39'950}), probe_verdict::stopped);
  // Even at a late tick.
  EXPECT_EQ(judge(p, 40'000, 36'000, {39'900, 39'950}, interval), probe_verdict::stopped);
}

TEST(probe_watch, the_patience_scales_with_the_interval) {
  EXPECT_EQ(probe_patience(1000), 2750);
  probe_watch p;
  p.send(100'000);
  EXPECT_EQ(judge(p, 105'000, 103'000, {}, 2000), probe_verdict::waiting);
  EXPECT_EQ(judge(p, 106'000, 104'000, {}, 2000), probe_verdict::stopped);
}

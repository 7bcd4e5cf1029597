// The client connection's one state machine, without actors: which phase
// may follow which, and what subscribers see in each.
#include <gtest/gtest.h>

#include "link_phase.hpp"

using namespace kullsync;
using kullsync::conn::link_phase;

namespace {

const link_phase all[] = {link_phase::idle,     link_phase::fetching_token,
                          link_phase::dialing,  link_phase::awaiting_welcome,
                          link_phase::ready_v1, link_phase::ready_v2,
                          link_phase::lost,     link_phase::waiting_retry,
                          link_phase::failed};

} // namespace

TEST(link_phase, a_disconnect_or_a_dial_comes_once_the_link_is_closed) {
  for (auto from : all) {
    bool closed = !conn::is_live(from);
    EXPECT_EQ(is_legal(from, link_phase::idle), closed) << to_string(from);
    EXPECT_EQ(is_legal(from, link_phase::fetching_token), closed) << to_string(from);
    // ... or the token came for the link being dialed.
    EXPECT_EQ(is_legal(from, link_phase::dialing),
              closed || from == link_phase::fetching_token)
      << to_string(from);
  }
}

TEST(link_phase, only_a_completed_handshake_opens_a_link) {
  for (auto from : all) {
    EXPECT_EQ(is_legal(from, link_phase::awaiting_welcome), from == link_phase::dialing)
      << to_string(from);
    EXPECT_EQ(is_legal(from, link_phase::ready_v1),
              from == link_phase::dialing || from == link_phase::awaiting_welcome)
      << to_string(from);
    // v2 only after the server echoed kull.v2 and sent its WELCOME.
    EXPECT_EQ(is_legal(from, link_phase::ready_v2), from == link_phase::awaiting_welcome)
      << to_string(from);
  }
}

TEST(link_phase, only_a_live_link_is_lost_and_only_the_policy_makes_it_wait) {
  for (auto from : all) {
    EXPECT_EQ(is_legal(from, link_phase::lost), conn::is_live(from)) << to_string(from);
    EXPECT_EQ(is_legal(from, link_phase::waiting_retry), from == link_phase::lost)
      << to_string(from);
    // From idle: connect() with a URL that cannot be dialed.
    EXPECT_EQ(is_legal(from, link_phase::failed),
              from == link_phase::lost || conn::is_live(from) || from == link_phase::idle)
      << to_string(from);
  }
}

TEST(link_phase, subscribers_see_a_connection_state_in_every_phase_but_lost) {
  using s = connection_state;
  EXPECT_EQ(public_state(link_phase::idle), s::disconnected);
  EXPECT_EQ(public_state(link_phase::fetching_token), s::connecting);
  EXPECT_EQ(public_state(link_phase::dialing), s::connecting);
  EXPECT_EQ(public_state(link_phase::awaiting_welcome), s::connecting);
  EXPECT_EQ(public_state(link_phase::ready_v1), s::connected);
  EXPECT_EQ(public_state(link_phase::ready_v2), s::connected);
  EXPECT_EQ(public_state(link_phase::lost), std::nullopt);
  EXPECT_EQ(public_state(link_phase::waiting_retry), s::reconnecting);
  EXPECT_EQ(public_state(link_phase::failed), s::failed);
}

TEST(link_phase, every_legal_phase_change_shows_a_legal_public_change) {
  // What subscribers see follows is_legal_transition, the public contract;
  // `lost` shows nothing, so its way through counts from the phase before.
  for (auto from : all)
    for (auto to : all) {
      if (!is_legal(from, to) || !public_state(from) || !public_state(to)
          || *public_state(from) == *public_state(to))
        continue;
      EXPECT_TRUE(is_legal_transition(*public_state(from), *public_state(to)))
        << to_string(from) << " -> " << to_string(to);
    }
  for (auto before : all)
    for (auto after : all) {
      if (!conn::is_live(before) || !is_legal(link_phase::lost, after) || !public_state(after)
          || *public_state(before) == *public_state(after))
        continue;
      EXPECT_TRUE(is_legal_transition(*public_state(before), *public_state(after)))
        << to_string(before) << " -> lost -> " << to_string(after);
    }
}

TEST(link_phase, live_open_and_ready_nest) {
  for (auto p : all) {
    if (conn::is_ready(p)) {
      EXPECT_TRUE(conn::is_open(p)) << to_string(p);
    }
    if (conn::is_open(p)) {
      EXPECT_TRUE(conn::is_live(p)) << to_string(p);
    }
  }
}

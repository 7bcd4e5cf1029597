// The device's side of its v2 stream, without actors: what the outbox does
// with each refusal the contract names, and with what it refuses itself.
#include <gtest/gtest.h>

#include "dial.hpp"
#include "stream_link.hpp"

using namespace kullsync;

namespace {

msg::client_message update(const std::string& shoot) {
  msg::shoot_progress p;
  p.shoot_id = shoot;
  p.status = msg::shoot_status::processing;
  p.processed_count = 1;
  p.total_count = 2;
  return msg::make_update_progress(p);
}

msg::server_message nack(const std::string& id, msg::nack_code code) {
  return msg::make_server_message(msg::server_type::nack, msg::nack{id, code, "no"}, 0, {});
}

msg::server_message ack(const std::string& id, uint64_t seq) {
  return msg::make_server_message(msg::server_type::ack, msg::ack{id, seq}, 0, {});
}

/// A link on v2 with one message sent at t = 1,000 ms; returns its id.
std::string sent_one(stream_link& s) {
  s.opened(true, 0);
  auto m = s.submit(update("s1"), true, 1000);
  EXPECT_TRUE(m && m->id);
  return *m->id;
}

} // namespace

// "unavailable (the server cannot store it now ...: retry later)": kept, and
// sent again with the same id once the ack timeout passes, until an ACK.
TEST(stream_link, a_message_refused_for_now_is_sent_again_with_its_id) {
  for (auto code : {msg::nack_code::unavailable, msg::nack_code::rate_limited}) {
    stream_link s{16, "mac-x"};
    auto id = sent_one(s);
    EXPECT_EQ(s.on_message(nack(id, code)), stream_link::verdict::apply);
    EXPECT_EQ(s.status().outbox, 1u) << to_string(code);
    EXPECT_EQ(s.status().deferred, 1u);
    EXPECT_EQ(s.status().refused, 0u);
    auto again = s.overdue(1000, 11000);
    ASSERT_EQ(again.size(), 1u) << to_string(code);
    EXPECT_EQ(again[0].id, id);
    // ... and on the next link, should this one drop first.
    auto reopened = s.opened(true, 12000);
    ASSERT_EQ(reopened.size(), 1u);
    EXPECT_EQ(reopened[0].id, id);
    s.on_message(ack(id, 7));
    EXPECT_EQ(s.status().outbox, 0u);
  }
}

// "4008 rate limited": a server closes a socket whose refusals in a second
// pass its burst. An outbox resent whole on every link would be refused
// past the burst and closed on every link, and never get through: a link
// has at most a window of messages out unanswered, halved by each
// `rate_limited`, widened by each ACK; the rest follow as answers come.
TEST(stream_link, an_outbox_is_resent_within_a_window) {
  stream_link s{256, "mac-x"};
  s.opened(false, 0); // no link that takes them yet: all kept
  s.closed();
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(s.submit(update("s" + std::to_string(i)), false, 0));
  auto first = s.opened(true, 1000);
  ASSERT_EQ(first.size(), stream_link::max_window);
  EXPECT_TRUE(s.sendable(1000).empty()) << "the window is full";
  EXPECT_FALSE(s.submit(update("late"), true, 1000)) << "waits its turn, in order";
  // Waiting for room, as offline: of a shoot's updates not sent yet, the
  // latest stays (the one replaced is told `superseded`).
  s.take_outcomes();
  EXPECT_FALSE(s.submit(update("s40"), true, 1000));
  auto replaced = s.take_outcomes();
  ASSERT_EQ(replaced.size(), 1u);
  EXPECT_EQ(std::get<msg::nack>(replaced[0].body).code, msg::nack_code::superseded);
  EXPECT_EQ(s.status().outbox, 101u);

  // Answers make room, one for one (the window is at its widest).
  s.on_message(ack(*first[0].id, 1));
  auto next = s.sendable(1001);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, "mac-x-" + std::to_string(stream_link::max_window + 1));

  // A flood's refusals shrink it: half, then a quarter.
  s.on_message(nack(*first[1].id, msg::nack_code::rate_limited));
  EXPECT_EQ(s.window(), stream_link::max_window / 2);
  s.on_message(nack(*first[2].id, msg::nack_code::rate_limited));
  EXPECT_EQ(s.window(), stream_link::max_window / 4);
  for (size_t k = 3; k < stream_link::max_window; ++k)
    s.on_message(ack(*first[k].id, k));
  // Each ACK widened it by one again, up to its widest; what is still out
  // counts against it.
  EXPECT_EQ(s.window(), stream_link::max_window);
  auto after = s.sendable(1002);
  EXPECT_EQ(after.size(), s.window() - 3) << "three out: two deferred, one sent";

  // Only what was out on the link is overdue, no more than the window
  // holds; a new link resends within the window, the deferred ones first.
  EXPECT_EQ(s.overdue(1000, 12000).size(), 2u);
  stream_link narrow{256, "mac-y"};
  narrow.opened(true, 0);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(*narrow.submit(update("n" + std::to_string(i)), true, 0)->id);
  for (auto& id : ids)
    narrow.on_message(nack(id, msg::nack_code::rate_limited));
  EXPECT_EQ(narrow.window(), stream_link::max_window / 8);
  for (int i = 0; i < 3; ++i)
    narrow.on_message(nack(ids[0], msg::nack_code::rate_limited));
  EXPECT_EQ(narrow.window(), 1u);
  EXPECT_EQ(narrow.overdue(0, 10000).size(), 1u) << "a flood's deferred ones, one at a time";
  auto reopened = s.opened(true, 13000);
  EXPECT_EQ(reopened.size(), s.window());
  EXPECT_EQ(reopened[0].id, first[1].id);
}

// Refusals that would come again for the same message end it: never resent.
TEST(stream_link, a_message_refused_for_good_is_not_sent_again) {
  for (auto code : {msg::nack_code::invalid, msg::nack_code::forbidden,
                    msg::nack_code::too_large}) {
    stream_link s{16, "mac-x"};
    auto id = sent_one(s);
    s.on_message(nack(id, code));
    EXPECT_EQ(s.status().outbox, 0u) << to_string(code);
    EXPECT_EQ(s.status().refused, 1u);
    EXPECT_TRUE(s.overdue(1000, 11000).empty());
    EXPECT_TRUE(s.opened(true, 12000).empty());
  }
}

// A NACK naming no message of the outbox changes nothing in it.
TEST(stream_link, a_refusal_of_an_unknown_id_leaves_the_outbox_alone) {
  stream_link s{16, "mac-x"};
  sent_one(s);
  s.on_message(nack("other", msg::nack_code::unavailable));
  s.on_message(nack("other", msg::nack_code::invalid));
  EXPECT_EQ(s.status().outbox, 1u);
  EXPECT_EQ(s.status().deferred, 0u);
}

// The contract: what is not yet acknowledged stays until it is. A full
// outbox refuses the newcomer (NACK outbox_full) instead of dropping what
// it took, sent or not.
TEST(stream_link, a_full_outbox_refuses_the_newcomer_and_keeps_what_it_took) {
  stream_link s{2, "mac-x"};
  s.opened(true, 0);
  auto first = s.submit(update("s1"), true, 1000);
  auto second = s.submit(update("s2"), true, 1000);
  ASSERT_TRUE(first && second);
  EXPECT_FALSE(s.submit(update("s3"), true, 1000));
  auto refused = s.take_outcomes();
  ASSERT_EQ(refused.size(), 1u);
  auto& n = std::get<msg::nack>(refused[0].body);
  EXPECT_EQ(n.code, msg::nack_code::outbox_full);
  EXPECT_EQ(n.id, "mac-x-3");
  auto resent = s.opened(true, 2000);
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0].id, first->id);
  EXPECT_EQ(resent[1].id, second->id);
}

// A frame over the server's limit would close the link (1009) each time it
// was resent, before anything behind it: refused at once (NACK too_large),
// online, offline, on v1, and when a store held one from before.
TEST(stream_link, a_message_too_large_for_the_server_is_refused_not_kept) {
  auto big = update("s1");
  std::get<msg::shoot_progress>(big.body).error_message = std::string(70 * 1024, 'x');
  stream_link s{16, "mac-x"};
  s.opened(true, 0);
  EXPECT_FALSE(s.submit(big, true, 1000));
  EXPECT_FALSE(s.submit(big, false, 1000));
  auto refused = s.take_outcomes();
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(std::get<msg::nack>(refused[0].body).code, msg::nack_code::too_large);
  EXPECT_EQ(std::get<msg::nack>(refused[0].body).id, "mac-x-1");
  EXPECT_TRUE(s.submit(update("s2"), true, 1000)); // what follows goes out
  EXPECT_EQ(s.status().outbox, 1u);

  stream_link v1{16, "mac-x"};
  v1.opened(false, 0);
  EXPECT_FALSE(v1.submit(big, true, 1000));
  EXPECT_EQ(std::get<msg::nack>(v1.take_outcomes().at(0).body).code,
            msg::nack_code::too_large);

  saved_outbox kept;
  kept.messages = {big, update("s2")};
  kept.messages[0].id = "old-1";
  kept.messages[1].id = "old-2";
  stream_link restored{16, "mac-x"};
  restored.restore(kept);
  auto resent = restored.opened(true, 0);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].id, "old-2");
  EXPECT_EQ(std::get<msg::nack>(restored.take_outcomes().at(0).body).id, "old-1");

  stream_link roomy{16, "mac-x"};
  roomy.limit_message_bytes(128 * 1024);
  roomy.opened(true, 0);
  EXPECT_TRUE(roomy.submit(big, true, 1000));
}

// A message of a type this build does not know, or one it could not read,
// still holds its position: the next one is not a gap (a gap resumes, and
// the resume would replay the same frame into the same gap).
TEST(stream_link, a_position_of_no_known_type_is_taken_not_a_gap) {
  stream_link s{16, "mac-x"};
  s.restore(saved_stream{"e1", 5, {}});
  s.opened(true, 0);
  auto welcome = msg::make_server_message(
    msg::server_type::welcome, msg::welcome{"e1", 5, true, "mac", std::nullopt, {}}, 0, {});
  EXPECT_EQ(s.on_message(welcome), stream_link::verdict::apply);
  msg::server_message future;
  future.type_name = "STYLE_APPLIED";
  future.seq = 6;
  future.body = msg::unknown_data{};
  EXPECT_EQ(s.on_message(future), stream_link::verdict::apply);
  auto next =
    msg::make_server_message(msg::server_type::credit_update, msg::credit_update{}, 0, {});
  next.seq = 7;
  EXPECT_EQ(s.on_message(next), stream_link::verdict::apply);
  EXPECT_EQ(s.status().seq, 7u);
  EXPECT_EQ(s.on_message(future), stream_link::verdict::drop); // at 6 again: a duplicate
}

// An app's own id is kept (and resent); one the server would refuse never
// goes out. On a v1 link nothing carries an id.
TEST(stream_link, an_apps_id_is_kept_and_a_bad_one_refused_at_once) {
  stream_link s{16, "mac-x"};
  s.opened(true, 0);
  auto m = update("s1");
  m.id = "mine-1";
  auto out = s.submit(m, true, 1000);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->id, "mine-1");
  EXPECT_EQ(s.opened(true, 2000).at(0).id, "mine-1");
  for (std::string bad : {std::string{}, std::string(65, 'y'), std::string{"a\x01"},
                          std::string{"\xff"}}) {
    m.id = bad;
    EXPECT_FALSE(s.submit(m, true, 1000)) << bad;
    auto refused = s.take_outcomes();
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(std::get<msg::nack>(refused[0].body).code, msg::nack_code::invalid);
  }
  EXPECT_EQ(s.status().outbox, 1u);
  stream_link v1{16, "mac-x"};
  v1.opened(false, 0);
  for (std::string any : {std::string{"mine-2"}, std::string(65, 'y')}) {
    m.id = any;
    out = v1.submit(m, true, 1000);
    ASSERT_TRUE(out);
    EXPECT_FALSE(out->id);
  }
  EXPECT_TRUE(v1.take_outcomes().empty());
}

// Offline, a later update of a shoot replaces the unsent one, whose id ends
// in NACK superseded.
TEST(stream_link, a_replaced_update_is_told_as_superseded) {
  stream_link s{16, "mac-x"};
  EXPECT_FALSE(s.submit(update("s1"), false, 1000));
  EXPECT_FALSE(s.submit(update("s1"), false, 1001));
  auto told = s.take_outcomes();
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(std::get<msg::nack>(told[0].body).id, "mac-x-1");
  EXPECT_EQ(std::get<msg::nack>(told[0].body).code, msg::nack_code::superseded);
  auto sent = s.opened(true, 2000);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].id, "mac-x-2");
}

// One outcome per message: the server answers a resend whose first answer
// came with the same ACK again, and a frame may come twice; only the first
// is passed on. An id already waiting is refused, not sent twice.
TEST(stream_link, each_message_has_one_outcome) {
  stream_link s{16, "mac-x"};
  auto id = sent_one(s);
  ASSERT_EQ(s.overdue(1000, 11000).size(), 1u); // the ACK was slow: resent
  EXPECT_EQ(s.on_message(ack(id, 3)), stream_link::verdict::apply);
  EXPECT_EQ(s.on_message(ack(id, 3)), stream_link::verdict::drop);
  EXPECT_EQ(s.on_message(nack(id, msg::nack_code::invalid)), stream_link::verdict::drop);
  EXPECT_EQ(s.status().refused, 0u);
  auto m = update("s2");
  m.id = "mine";
  ASSERT_TRUE(s.submit(m, true, 12000));
  EXPECT_FALSE(s.submit(m, true, 12000));
  auto refused = s.take_outcomes();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(std::get<msg::nack>(refused[0].body).code, msg::nack_code::invalid);
  EXPECT_EQ(s.status().outbox, 1u);
}

// Ids go out as text frames: a device id cut inside a UTF-8 character would
// make every message of the device invalid UTF-8 (the server closes 1007).
TEST(message_ids, a_long_device_id_is_cut_at_a_character_boundary) {
  for (std::string tail : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x93\xB7"}) {
    for (size_t lead = 26; lead <= 30; ++lead) {
      auto device = std::string(lead, 'a') + tail + "zz";
      auto prefix = make_message_id_prefix(device, 1'700'000'000'000);
      auto part = prefix.substr(0, prefix.rfind('-'));
      EXPECT_EQ(device.compare(0, part.size(), part), 0) << part;
      EXPECT_LE(part.size(), 30u);
      EXPECT_GE(part.size(), 27u) << "cut more than the character at the edge";
      EXPECT_TRUE(msg::valid_id(prefix + "-123")) // valid UTF-8, among the rest
        << "cut inside a character: " << lead << " + " << tail.size() << " bytes";
    }
  }
}

// The Redis broker's reading of Redis: every reply of the wrong shape is a
// clear error (never a crash), channel messages are parsed strictly, and
// users are sharded the same way on every node.
#include <gtest/gtest.h>

#include <map>

#include "kullsync/server/server.hpp"
#include "redis_codec.hpp"

using namespace kullsync;
using namespace kullsync::broker;

namespace {

redis_value str(std::string s) {
  redis_value v;
  v.kind = redis_value::string;
  v.str = std::move(s);
  return v;
}

redis_value num(int64_t n) {
  redis_value v;
  v.kind = redis_value::integer;
  v.number = n;
  return v;
}

redis_value arr(std::vector<redis_value> xs) {
  redis_value v;
  v.kind = redis_value::array;
  v.elements = std::move(xs);
  return v;
}

bool unavailable(const caf::error& e) {
  return e.category() == caf::atom("broker")
         && e.code() == static_cast<uint8_t>(server::broker_errc::unavailable);
}

bool unknown(const caf::error& e) {
  return e.category() == caf::atom("broker")
         && e.code() == static_cast<uint8_t>(server::broker_errc::outcome_unknown);
}

redis_value refused(std::string text) {
  redis_value v;
  v.kind = redis_value::error;
  v.str = std::move(text);
  return v;
}

bool bad_reply(const caf::error& e) {
  return e.category() == caf::atom("broker")
         && e.code() == static_cast<uint8_t>(server::broker_errc::bad_reply);
}

} // namespace

TEST(redis_codec, publish_replies) {
  // A batch of two: a receipt each, in order.
  auto ok = parse_publish(arr({num(7), str("e1"), num(0), num(3), str("e1"), num(1)}), 2);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0]->seq, 7u);
  EXPECT_EQ((*ok)[0]->epoch, "e1");
  EXPECT_FALSE((*ok)[0]->duplicate);
  EXPECT_TRUE((*ok)[1]->duplicate);
  // One refused by the script (a user's keys it cannot use): that one alone,
  // and not published (503, not 504).
  auto some = parse_publish(arr({num(7), str("e1"), num(0), num(0), str("WRONGTYPE x"), num(-1)}), 2);
  ASSERT_TRUE(some);
  EXPECT_TRUE((*some)[0]);
  ASSERT_FALSE((*some)[1]);
  EXPECT_TRUE(unavailable((*some)[1].error()));
  EXPECT_TRUE(unknown(parse_publish(arr({num(7), str("e1"), num(2)}), 1).error()));
  // The script ran and answered something else: it may have written.
  EXPECT_TRUE(unknown(parse_publish(arr({num(7), str("e1"), num(0)}), 2).error()))
    << "one receipt short";
  EXPECT_TRUE(unknown(parse_publish(arr({num(7), str("e1")}), 1).error()));
  EXPECT_TRUE(unknown(parse_publish(arr({num(-1), str("e1"), num(0)}), 1).error()));
  EXPECT_TRUE(unknown(parse_publish(arr({num(1), str(""), num(0)}), 1).error()));
  EXPECT_TRUE(unknown(parse_publish(str("OK"), 1).error()));
}

// 503 means "not published": only what certainly did not happen is
// unavailable; a call under way when the link went, or a script that
// failed after it may have written, is of unknown outcome.
TEST(redis_codec, publish_failures_say_whether_it_happened) {
  EXPECT_TRUE(unavailable(parse_publish(redis_value::not_sent("not connected"), 1).error()));
  EXPECT_TRUE(unknown(parse_publish(redis_value::cut_off("connection lost"), 1).error()));
  for (auto* before_writing :
       {"OOM command not allowed when used memory > 'maxmemory'. script: x, on @user_script:9.",
        "READONLY You can't write against a read only replica.",
        "BUSY Redis is busy running a script.", "LOADING Redis is loading the dataset in memory",
        "MASTERDOWN Link with MASTER is down", "NOAUTH Authentication required.",
        "MISCONF Redis is configured to save RDB snapshots"}) {
    EXPECT_TRUE(refused_before_writing(refused(before_writing))) << before_writing;
    EXPECT_TRUE(unavailable(parse_publish(refused(before_writing), 1).error())) << before_writing;
  }
  for (auto* maybe_after :
       {"ERR Error running script (call to f_x): @user_script:12: ERR The ID specified in "
        "XADD is equal or smaller than the target stream top item",
        "ERR unknown", "OOMPH", ""}) {
    EXPECT_FALSE(refused_before_writing(refused(maybe_after))) << maybe_after;
    EXPECT_TRUE(unknown(parse_publish(refused(maybe_after), 1).error())) << maybe_after;
  }
  EXPECT_FALSE(refused_before_writing(str("OOM ")));
}

TEST(redis_codec, head_replies) {
  auto h = parse_head(arr({str("e"), num(4),
                           arr({str("credits"), str("0|-1|5|0|70|{\"type\":\"CREDIT_UPDATE\"}"),
                                str("shoot:s|1"), str("1|-1|5|900|80|{\"a\":\"x|y\"}")}),
                           arr({str("node-a|mac"), str("123|2")}), num(3)}));
  ASSERT_TRUE(h) << to_string(h.error());
  EXPECT_EQ(h->top, 4u);
  ASSERT_EQ(h->state.size(), 2u);
  EXPECT_EQ(h->state[0].field, "credits");
  EXPECT_EQ(h->state[0].until, 0);
  EXPECT_EQ(h->state[0].updated, 70);
  EXPECT_EQ(h->state[1].field, "shoot:s|1");
  EXPECT_EQ(h->state[1].until, 900);
  EXPECT_EQ(h->state[1].frame, "{\"a\":\"x|y\"}"); // a bar inside the frame stays
  ASSERT_EQ(h->devices.size(), 1u);
  EXPECT_EQ(h->devices[0].node, "node-a");
  EXPECT_EQ(h->devices[0].device, "mac");
  EXPECT_EQ(h->devices[0].connected_at, 123);
  EXPECT_EQ(h->devices[0].protocol, 2);
  EXPECT_EQ(h->first, 3u);
  // Malformed: a state value without its fields, or not a frame; presence
  // without a node; an odd presence list; the wrong arity.
  auto head_of = [](redis_value state, redis_value presence) {
    return parse_head(arr({str("e"), num(1), std::move(state), std::move(presence), num(0)}));
  };
  EXPECT_TRUE(bad_reply(head_of(arr({str("{}")}), arr({})).error()));
  EXPECT_TRUE(bad_reply(head_of(arr({str("f"), str("{}")}), arr({})).error()));
  EXPECT_TRUE(bad_reply(head_of(arr({str("f"), str("0|1|2|3|4|nope")}), arr({})).error()));
  EXPECT_TRUE(bad_reply(head_of(arr({str("f"), str("0|1|2|x|4|{}")}), arr({})).error()));
  EXPECT_TRUE(bad_reply(head_of(arr({}), arr({str("mac"), str("1|1")})).error()));
  EXPECT_TRUE(bad_reply(head_of(arr({}), arr({str("a|b")})).error()));
  EXPECT_TRUE(bad_reply(head_of(arr({}), arr({str("n|d"), str("1")})).error())) << "no protocol";
  EXPECT_TRUE(bad_reply(head_of(arr({}), arr({str("n|d"), str("1|3")})).error())) << "protocol 3";
  EXPECT_TRUE(bad_reply(parse_head(arr({str("e"), num(1), arr({}), arr({})})).error()))
    << "without the oldest position";
  EXPECT_TRUE(bad_reply(parse_head(arr({str("e"), num(1)})).error()));
}

TEST(redis_codec, read_replies) {
  auto entry = [](std::string id, std::string frame) {
    return arr({str(std::move(id)), arr({str("f"), str(std::move(frame))})});
  };
  // Stored as the state keeps it (a bare frame: as older nodes stored it).
  auto r = parse_read(arr({str("e"), num(1), arr({entry("3-0", "{\"x\":1}"),
                                                  entry("4-0", "0|7|0|0|12|{\"x\":2}")})}),
                      "u");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->complete);
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[1]->seq, 4u);
  EXPECT_EQ(r->messages[1]->user(), "u");
  EXPECT_EQ(r->messages[1]->epoch(), "e");
  // The v2 frame, built once here: the position is its last field.
  EXPECT_EQ(r->messages[1]->frame.str(), "{\"x\":2,\"seq\":4}");
  EXPECT_FALSE(parse_read(arr({str("e"), num(0), arr({})}), "u")->complete);
  EXPECT_TRUE(bad_reply(parse_read(arr({str("e"), num(1), arr({entry("x-0", "{}")})}), "u").error()));
  EXPECT_TRUE(bad_reply(parse_read(arr({str("e"), num(1), arr({entry("3-0", "[]")})}), "u").error()));
  EXPECT_TRUE(bad_reply(parse_read(arr({str("e"), num(1), arr({entry("3-0", "0|7|0|{}")})}), "u").error()));
  EXPECT_TRUE(bad_reply(parse_read(arr({str("e"), num(1), arr({str("3-0")})}), "u").error()));
}

TEST(redis_codec, channel_messages) {
  // A numbered message with the state change it made, then presence: two
  // records of one channel message.
  auto ms = parse_channel_message(
    "u", "12 ep node-a 0 0 shoot:s\x1f\x1f" "1|-1|0|900|70|{\"type\":\"X\",\"data\":{\"a\":\"b c\"}}"
         "\x1e" "0 ep node-a 1 55|2 \x1fmac\x1f" "0|0|0|0|55|{\"type\":\"DEVICE_CONNECTED\"}");
  ASSERT_EQ(ms.size(), 2u);
  auto& m = ms[0];
  EXPECT_EQ(m->user(), "u");
  EXPECT_EQ(m->seq, 12u);
  EXPECT_EQ(m->epoch(), "ep");
  EXPECT_EQ(m->origin, "node-a");
  EXPECT_EQ(m->frame.str(), "{\"type\":\"X\",\"data\":{\"a\":\"b c\"},\"seq\":12}");
  EXPECT_EQ(v1_frame(*m).str(), "{\"type\":\"X\",\"data\":{\"a\":\"b c\"}}");
  EXPECT_EQ(m->state.field, "shoot:s");
  EXPECT_EQ(m->state.until, 900);
  EXPECT_EQ(m->state.updated, 70);
  EXPECT_FALSE(m->presence);
  auto& p = ms[1];
  EXPECT_EQ(p->seq, 0u);
  ASSERT_TRUE(p->presence);
  EXPECT_EQ(p->presence->device, "mac");
  EXPECT_EQ(p->presence->node, "node-a");
  EXPECT_EQ(p->presence->connected_at, 55);
  EXPECT_EQ(p->presence->protocol, 2);
  EXPECT_TRUE(p->present);
  EXPECT_EQ(p->frame.str(), "{\"type\":\"DEVICE_CONNECTED\"}");
  // Spaces, colons and newlines in a frame are the frame's.
  EXPECT_EQ(parse_channel_message("u", "1 ep n 0 0 \x1f\x1f" "0|1|0|0|5|{\"a\":\"1:2 3\n|\"}").size(), 1u);
  for (auto bad : {"", "12 ep node-a", "12 ep node-a {}", "1 ep n 0 0 {}",
                   "1 ep n 0 0 \x1f\x1f{}", // a value without its state fields
                   "1 ep n 0 0 \x1f{}", "x ep n 0 0 \x1f\x1f" "0|0|0|0|5|{}",
                   "-1 ep n 0 0 \x1f\x1f" "0|0|0|0|5|{}", "1 ep n 0 0 \x1f\x1fnot-json",
                   "1 ep n 0 0 \x1f\x1f" "0|1|0|0|{}", "1 ep n 0 0 \x1f\x1f" "0|1|0|x|5|{}",
                   "1 ep n 0 0 \x1f\x1f" "0|1|0|0|5|not-json",
                   "1 ep n 2 0 \x1f\x1f" "0|0|0|0|5|{}", "1  n 0 0 \x1f\x1f" "0|0|0|0|5|{}",
                   "1 ep n 0 0 \x1f\x1f" "0|0|0|0|5|{}\x1e", "1 ep n 0 0 \x1f\x1f" "0|0|0|0|5|{}\x1e" "abc"})
    EXPECT_TRUE(parse_channel_message("u", bad).empty()) << bad;
}

TEST(redis_codec, keys_and_channels) {
  auto k = keys_for("ks:", "user 1");
  EXPECT_EQ(k.channel, "ks:{user 1}:c");
  EXPECT_EQ(user_of_channel("ks:", k.channel), std::optional<std::string>{"user 1"});
  EXPECT_FALSE(user_of_channel("ks:", "ks:probe:abc"));
  EXPECT_FALSE(user_of_channel("ks:", "other:{u}:c"));
  EXPECT_EQ(mastership_of("# Server\r\nredis_version:7.0\r\nrun_id:abc123\r\ntcp_port:1\r\n"
                          "\r\n# Replication\r\nrole:master\r\nmaster_replid:f00d\r\n"
                          "master_replid2:0000\r\n"),
            std::optional<std::string>{"abc123:f00d"});
  EXPECT_FALSE(mastership_of("# Server\r\nrun_id:abc123\r\n"));
  EXPECT_FALSE(mastership_of("# Replication\r\nmaster_replid:f00d\r\n"));
  // SET ... NX GET is 7.0's: an older Redis would refuse every publish with a
  // dedup key, so it is refused where the link starts, with its version.
  EXPECT_EQ(too_old_for_scripts("# Server\r\nredis_version:6.2.14\r\nrun_id:x\r\n"),
            std::optional<std::string>{"6.2.14"});
  EXPECT_EQ(too_old_for_scripts("# Server\r\nredis_version:7.0.15\r\nrun_id:x\r\n"),
            std::nullopt);
  EXPECT_EQ(too_old_for_scripts("# Server\r\nredis_version:10.0.0\r\n"), std::nullopt);
  EXPECT_EQ(too_old_for_scripts("# Server\r\nrun_id:x\r\n"),
            std::optional<std::string>{"unknown"});
  EXPECT_EQ(too_old_for_scripts("# Server\r\nredis_version:x.y\r\n"),
            std::optional<std::string>{"x.y"});
}

TEST(redis_codec, users_shard_stably_and_evenly) {
  // The same on every node and build: these values are part of the
  // deployment (every node must agree), so they are pinned.
  EXPECT_EQ(shard_of("alice", 1), 0u);
  std::map<uint32_t, size_t> counts;
  for (int i = 0; i < 30000; ++i)
    ++counts[shard_of("user-" + std::to_string(i), 3)];
  ASSERT_EQ(counts.size(), 3u);
  for (auto& [shard, n] : counts)
    EXPECT_NEAR(static_cast<double>(n), 10000.0, 600.0) << "shard " << shard;
  // Adding an instance moves about a quarter of the users, all to it.
  size_t moved = 0;
  for (int i = 0; i < 30000; ++i) {
    auto user = "user-" + std::to_string(i);
    auto before = shard_of(user, 3), after = shard_of(user, 4);
    if (before != after) {
      ++moved;
      EXPECT_EQ(after, 3u);
    }
  }
  EXPECT_NEAR(static_cast<double>(moved), 7500.0, 600.0);
}

TEST(redis_urls, plain_and_sentinel) {
  std::string error;
  auto plain = parse_redis_url("redis://:secret@127.0.0.1:6380", error);
  ASSERT_TRUE(plain) << error;
  EXPECT_EQ(plain->host, "127.0.0.1");
  EXPECT_EQ(plain->port, 6380);
  EXPECT_EQ(plain->password, "secret");
  EXPECT_TRUE(plain->master_name.empty());
  auto s = parse_redis_url("redis+sentinel://app:pw@127.0.0.1:26379,localhost:26380,[::1]:26381/mymaster",
                           error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->master_name, "mymaster");
  EXPECT_EQ(s->user, "app");
  EXPECT_EQ(s->password, "pw");
  ASSERT_EQ(s->sentinels.size(), 3u);
  EXPECT_EQ(s->sentinels[0], std::make_pair(std::string{"127.0.0.1"}, uint16_t{26379}));
  EXPECT_EQ(s->sentinels[1].second, 26380);
  EXPECT_EQ(s->sentinels[2], std::make_pair(std::string{"::1"}, uint16_t{26381}));
  EXPECT_TRUE(s->host.empty()) << "the master's address comes from the sentinels";
  auto bare = parse_redis_url("redis+sentinel://127.0.0.1,[::1]/m", error);
  ASSERT_TRUE(bare) << error;
  EXPECT_EQ(bare->sentinels[0].second, 26379) << "a sentinel's port by default is Sentinel's";
  EXPECT_EQ(bare->sentinels[1].second, 26379);
  EXPECT_EQ(parse_redis_url("redis://127.0.0.1", error)->port, 6379);
  for (auto* bad : {"redis+sentinel://127.0.0.1:26379", "redis+sentinel://127.0.0.1:26379/",
                    "redis+sentinel://127.0.0.1:0/m", "redis+sentinel://:pw@127.0.0.1:26379,/m",
                    "redis+sentinel://127.0.0.1:26379/my master", "rediss://127.0.0.1",
                    "redis+sentinel://nosuchhost.invalid:26379/m"}) {
    error.clear();
    EXPECT_FALSE(parse_redis_url(bad, error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
  error.clear();
  EXPECT_FALSE(parse_redis_url("http://u:topsecret@h/", error));
  EXPECT_EQ(error.find("topsecret"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(parse_redis_url("redis+sentinel://u:topsecret@h:1/", error));
  EXPECT_EQ(error.find("topsecret"), std::string::npos) << error;
}

TEST(redis_urls, lists_split_between_urls_only) {
  using v = std::vector<std::string>;
  EXPECT_EQ(split_broker_list("redis://a:1,redis://b:2"), (v{"redis://a:1", "redis://b:2"}));
  EXPECT_EQ(split_broker_list("redis+sentinel://s1:26379,s2:26379/m1, redis+sentinel://s3:1,s4:2/m2,redis://c"),
            (v{"redis+sentinel://s1:26379,s2:26379/m1", "redis+sentinel://s3:1,s4:2/m2", "redis://c"}));
  EXPECT_EQ(split_broker_list("redis://a"), (v{"redis://a"}));
  EXPECT_EQ(split_broker_list(""), v{});
  EXPECT_EQ(split_broker_list("redis://:p,w@a"), (v{"redis://:p,w@a"}))
    << "a comma that does not begin a URL stays in its URL";
}

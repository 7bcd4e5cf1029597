// The codec for v2's additions (../shared/PROTOCOL.md "v2"): the exact shapes
// a third-party client reads and writes, round trips, and refusals.
#include <gtest/gtest.h>

#include "kullsync/messages/codec.hpp"

using namespace kullsync::msg;

namespace {

server_message decode_ok(const std::string& text) {
  auto r = decode_server(text);
  EXPECT_TRUE(r) << (r ? "" : r.error().detail) << "\n  in: " << text;
  return r ? *r : server_message{};
}

} // namespace

TEST(codec_v2, welcome_as_the_contract_writes_it) {
  std::string text = R"({"type":"WELCOME","data":{"epoch":"e1-3","seq":42,"recovered":true,"deviceId":"mac","expiresAt":null,"devices":[{"deviceId":"mac","timestamp":5},{"deviceId":"ipad","timestamp":6}]},"timestamp":7})";
  auto m = decode_ok(text);
  ASSERT_EQ(m.type, server_type::welcome);
  auto& w = std::get<welcome>(m.body);
  EXPECT_EQ(w.epoch, "e1-3");
  EXPECT_EQ(w.seq, 42u);
  EXPECT_TRUE(w.recovered);
  EXPECT_EQ(w.device_id, "mac");
  EXPECT_FALSE(w.expires_at);
  ASSERT_EQ(w.devices.size(), 2u);
  EXPECT_EQ(w.devices[1].device_id, "ipad");
  EXPECT_FALSE(m.device_id);
  EXPECT_EQ(encode(m), text);
}

TEST(codec_v2, snapshot_as_the_contract_writes_it) {
  std::string text = R"({"type":"SNAPSHOT","data":{"seq":9,"credits":{"newBalance":950,"change":-50,"reason":"shoot s1"},"shoots":[{"shootId":"s1","status":"processing","processedCount":1,"totalCount":2,"provider":"p"}],"devices":[{"deviceId":"mac","timestamp":5}]},"timestamp":7})";
  auto m = decode_ok(text);
  ASSERT_EQ(m.type, server_type::snapshot);
  auto& s = std::get<user_state>(m.body);
  EXPECT_EQ(s.seq, 9u);
  ASSERT_TRUE(s.credits);
  EXPECT_EQ(s.credits->new_balance, 950);
  ASSERT_EQ(s.shoots.size(), 1u);
  EXPECT_EQ(encode(m), text);
  // No credits yet: null.
  auto empty = decode_ok(R"({"type":"SNAPSHOT","data":{"seq":0,"credits":null,"shoots":[],"devices":[]},"timestamp":7})");
  EXPECT_FALSE(std::get<user_state>(empty.body).credits);
}

TEST(codec_v2, ack_nack_refreshed_as_the_contract_writes_them) {
  for (std::string text : {
         std::string{R"({"type":"ACK","data":{"id":"m-1","seq":10},"timestamp":7})"},
         std::string{R"({"type":"NACK","data":{"id":"m-2","code":"rate_limited","error":"slow down"},"timestamp":7})"},
         std::string{R"({"type":"NACK","data":{"id":null,"code":"invalid","error":"bad id"},"timestamp":7})"},
         std::string{R"({"type":"REFRESHED","data":{"expiresAt":1732590000000},"timestamp":7})"},
         std::string{R"({"type":"REFRESHED","data":{"expiresAt":null},"timestamp":7})"}}) {
    auto m = decode_ok(text);
    EXPECT_EQ(encode(m), text);
  }
  EXPECT_EQ(std::get<nack>(decode_ok(R"({"type":"NACK","data":{"id":"x","code":"unavailable","error":""},"timestamp":1})").body).code,
            nack_code::unavailable);
}

// The client engine's own NACK codes are not the contract's: a server's
// frame carrying one is bad, not a refusal.
TEST(codec_v2, the_engines_own_nack_codes_are_not_read_from_the_wire) {
  for (std::string code : {"superseded", "outbox_full"}) {
    auto r = decode_server(R"({"type":"NACK","data":{"id":"x","code":")" + code
                           + R"(","error":""},"timestamp":1})");
    EXPECT_FALSE(r) << code;
  }
}

// A message's id as a NACK echoes it: cut to 64 characters (not bytes),
// null when it is not a string, nothing when there is none.
TEST(codec_v2, a_refused_id_is_echoed_as_the_contract_says) {
  auto echo = [](const std::string& frame) { return client_frame_id(frame); };
  std::string e64, e65;
  for (int i = 0; i < 64; ++i)
    e64 += "\xc3\xa9"; // é
  e65 = e64 + "x";
  EXPECT_EQ(echo(R"({"type":"UPDATE_PROGRESS","id":")" + e65 + R"("})")->id, e64);
  EXPECT_EQ(echo(R"({"type":"UPDATE_PROGRESS","id":""})")->id, "");
  EXPECT_EQ(echo(R"({"type":"UPDATE_PROGRESS","id":"ok"})")->id, "ok");
  for (auto bad : {R"({"id":42})", R"({"id":null})", R"({"id":[1]})", R"({"id":{"a":1}})"}) {
    auto e = echo(bad);
    ASSERT_TRUE(e) << bad;
    EXPECT_FALSE(e->id) << bad;
  }
  EXPECT_FALSE(echo(R"({"type":"PING"})"));
  EXPECT_FALSE(echo("not json"));
  EXPECT_FALSE(echo("[1]"));
  // The decoder counts characters too: 64 of them is an id, 65 is not.
  EXPECT_TRUE(decode_client(R"({"type":"PING","id":")" + e64 + R"("})"));
  EXPECT_FALSE(decode_client(R"({"type":"PING","id":")" + e65 + R"("})"));
  // A frame refused for what JSON allows still names its id, so that its
  // refusal reaches it: a lone surrogate escape (JavaScript writes one for
  // half an emoji), in the payload or the id itself, and nesting past the
  // decoder's depth.
  const std::string progress = R"("shootId":"s","status":"queued","processedCount":0,"totalCount":1)";
  auto lone = R"({"type":"UPDATE_PROGRESS","id":"m1","payload":{)" + progress
              + R"(,"currentImage":"\ud800.jpg"}})";
  EXPECT_FALSE(decode_client(lone));
  ASSERT_TRUE(echo(lone));
  EXPECT_EQ(echo(lone)->id, "m1");
  auto lone_id = echo(R"({"type":"UPDATE_PROGRESS","id":"\udc00x"})");
  ASSERT_TRUE(lone_id);
  EXPECT_EQ(lone_id->id, "\xef\xbf\xbd" "x"); // U+FFFD in its place
  std::string deep = R"({"type":"UPDATE_PROGRESS","id":"m2","payload":{)" + progress
                     + R"(,"meta":)" + std::string(40, '[') + std::string(40, ']') + "}}";
  EXPECT_FALSE(decode_client(deep));
  ASSERT_TRUE(echo(deep));
  EXPECT_EQ(echo(deep)->id, "m2");
  // A pair is left alone, and an escaped backslash before a u is no escape.
  auto pair = echo(R"({"id":"a\ud83d\ude00","x":"\\ud800"})");
  ASSERT_TRUE(pair);
  EXPECT_EQ(pair->id, "a\xf0\x9f\x98\x80");
}

TEST(codec_v2, numbered_messages_carry_seq_and_v1_ones_do_not) {
  shoot_progress p;
  p.shoot_id = "s1";
  p.status = shoot_status::processing;
  p.processed_count = 3;
  p.total_count = 9;
  p.provider = "openai";
  auto m = make_server_message(server_type::shoot_progress, p, 1, "server", "u1");
  EXPECT_EQ(encode(m).find("seq"), std::string::npos);
  m.seq = 17;
  auto text = encode(m);
  EXPECT_NE(text.find(R"("seq":17)"), std::string::npos) << text;
  auto back = decode_ok(text);
  EXPECT_EQ(back.seq, 17u);
  EXPECT_TRUE(back == m);
  // The verbatim relay writes it too.
  auto relayed = encode_envelope("SHOOT_PROGRESS", to_json(p), 1, "mac", "u1", 5);
  EXPECT_EQ(decode_ok(relayed).seq, 5u);
  EXPECT_TRUE(is_numbered(server_type::shoot_progress));
  EXPECT_TRUE(is_numbered(server_type::credit_update));
  EXPECT_TRUE(is_numbered(server_type::prompt_change));
  EXPECT_TRUE(is_numbered(server_type::admin_session_update));
  EXPECT_FALSE(is_numbered(server_type::device_connected));
  EXPECT_FALSE(is_numbered(server_type::provider_health));
  EXPECT_FALSE(is_numbered(server_type::pong));
}

// "unknown types must be tolerated (ignored, counted)": one in the stream
// keeps its position, and so does a frame that does not decode but has one.
TEST(codec_v2, a_position_is_read_from_frames_this_build_cannot_read) {
  auto future = decode_ok(R"({"type":"STYLE_APPLIED","data":{"x":[1]},"seq":7,"timestamp":1})");
  EXPECT_EQ(future.type, server_type::unknown);
  EXPECT_EQ(future.seq, 7u);
  // The one rule the client's stream link and its saved position share.
  EXPECT_TRUE(holds_position(future));
  EXPECT_TRUE(holds_position(decode_ok(
    R"({"type":"CREDIT_UPDATE","data":{"userId":"u","newBalance":1,"change":1,"reason":""},"seq":3,"timestamp":1})")));
  EXPECT_FALSE(holds_position(decode_ok(R"({"type":"STYLE_APPLIED","data":{}})")));
  EXPECT_FALSE(holds_position(decode_ok(R"({"type":"PONG","timestamp":1,"seq":4})")));
  EXPECT_EQ(decode_ok(R"({"type":"STYLE_APPLIED","seq":"7"})").seq, std::nullopt);
  EXPECT_EQ(decode_ok(R"({"type":"STYLE_APPLIED","seq":-2})").seq, std::nullopt);
  auto bad = R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","status":"paused"},"seq":8,"timestamp":1})";
  EXPECT_FALSE(decode_server(bad));
  EXPECT_EQ(server_frame_seq(bad), 8u);
  EXPECT_EQ(server_frame_seq(R"({"type":"SHOOT_PROGRESS","data":{}})"), std::nullopt);
  EXPECT_EQ(server_frame_seq(R"([1,2])"), std::nullopt);
  EXPECT_EQ(server_frame_seq("{not json"), std::nullopt);
}

TEST(codec_v2, client_ids_and_refresh) {
  auto r = decode_client(R"({"type":"UPDATE_PROGRESS","id":"mac-7","payload":{"shootId":"s","status":"queued","processedCount":0,"totalCount":1}})");
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->id, "mac-7");
  EXPECT_EQ(encode(*r), R"({"type":"UPDATE_PROGRESS","id":"mac-7","payload":{"shootId":"s","status":"queued","processedCount":0,"totalCount":1,"provider":""}})");
  auto f = decode_client(R"({"type":"REFRESH","payload":{"token":"eyJ.x.y"}})");
  ASSERT_TRUE(f) << f.error().detail;
  EXPECT_EQ(f->type, client_type::refresh);
  EXPECT_EQ(std::get<refresh>(f->body).token, "eyJ.x.y");
  EXPECT_TRUE(decode_client(encode(*f)));
  EXPECT_FALSE(decode_client(R"({"type":"UPDATE_PROGRESS","payload":{"shootId":"s","status":"queued","processedCount":0,"totalCount":1}})")->id);
}

TEST(codec_v2, refusals_name_the_field) {
  struct bad {
    const char* text;
    decode_errc code;
    const char* path;
  };
  const bad server_cases[] = {
    {R"({"type":"SHOOT_PROGRESS","seq":-1,"timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})", decode_errc::out_of_range, "seq"},
    {R"({"type":"SHOOT_PROGRESS","seq":"1","timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})", decode_errc::wrong_type, "seq"},
    {R"({"type":"WELCOME","timestamp":1,"data":{"seq":1,"recovered":true}})", decode_errc::missing_field, "data.epoch"},
    {R"({"type":"WELCOME","timestamp":1,"data":{"epoch":"e","seq":1,"recovered":"yes"}})", decode_errc::wrong_type, "data.recovered"},
    {R"({"type":"NACK","timestamp":1,"data":{"id":"x","code":"nope"}})", decode_errc::bad_enum, "data.code"},
    {R"({"type":"ACK","timestamp":1,"data":{"id":"x"}})", decode_errc::missing_field, "data.seq"},
  };
  for (auto& c : server_cases) {
    auto r = decode_server(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, c.code) << c.text << ": " << r.error().detail;
    EXPECT_EQ(r.error().path, c.path) << c.text;
  }
  std::string long_id(65, 'x');
  for (std::string text : {std::string{R"({"type":"PING","id":""})"},
                           R"({"type":"PING","id":")" + long_id + R"("})",
                           std::string{R"({"type":"PING","id":7})"}}) {
    auto r = decode_client(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().path, "id") << text;
  }
  // A REFRESH without a usable token is still a REFRESH (its token empty,
  // which the server refuses with 4002), not a frame to ignore.
  for (auto text : {R"({"type":"REFRESH","payload":{}})", R"({"type":"REFRESH"})",
                    R"({"type":"REFRESH","payload":{"token":5}})"}) {
    auto r = decode_client(text);
    ASSERT_TRUE(r) << text;
    EXPECT_EQ(r->type, client_type::refresh);
    EXPECT_EQ(std::get<refresh>(r->body).token, "") << text;
  }
}

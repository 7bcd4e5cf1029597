// The v1 codec against the deployed system's real shapes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kullsync/messages/codec.hpp"

using namespace kullsync::msg;

namespace {

server_message decode_ok(const std::string& text) {
  auto r = decode_server(text);
  EXPECT_TRUE(r) << (r ? "" : r.error().detail) << "\n  in: " << text;
  return r ? *r : server_message{};
}

client_message decode_client_ok(const std::string& text) {
  auto r = decode_client(text);
  EXPECT_TRUE(r) << (r ? "" : r.error().detail) << "\n  in: " << text;
  return r ? *r : client_message{};
}

shoot_progress sample_progress() {
  shoot_progress p;
  p.shoot_id = "s1";
  p.status = shoot_status::processing;
  p.processed_count = 12;
  p.total_count = 48;
  p.current_image = "IMG_0012.CR3";
  p.eta = 93.5;
  p.provider = "openai";
  return p;
}

provider_health sample_health() {
  provider_status s;
  s.provider = "anthropic";
  s.health_score = 97.5;
  s.status = health_status::degraded;
  s.active_requests = 3;
  s.requests_today = 1200;
  s.cost_today = 12.25;
  s.avg_latency = 830;
  s.success_rate = 0.99;
  s.error_rate = 0.01;
  s.rate_limit_hits = 2;
  s.rate_limit_proximity = 0.4;
  s.recent_errors = 1;
  s.last_error = "timeout";
  s.last_error_time = 1732580000000;
  s.request_history = {{1732580000000, 10}, {1732580010000, 12}};
  s.cost_history = {{1732580000000, 0.5}};
  s.error_history = {};
  s.uptime_percentage = 99.9;
  s.last_downtime = 1732500000000;
  provider_health h;
  h.providers.push_back(s);
  s.provider = "openai";
  s.last_error.reset();
  s.last_error_time.reset();
  s.last_downtime.reset();
  s.status = health_status::healthy;
  h.providers.push_back(s);
  h.timestamp = 1732580000123;
  return h;
}

std::vector<server_message> every_server_message() {
  std::vector<server_message> xs;
  const int64_t ts = 1732580000123;
  xs.push_back(make_server_message(server_type::shoot_progress,
                                   sample_progress(), ts, "server", "u1"));
  auto failed = sample_progress();
  failed.status = shoot_status::failed;
  failed.error_message = "provider quota \"exceeded\"\n";
  failed.current_image.reset();
  failed.eta.reset();
  xs.push_back(make_server_message(server_type::shoot_progress, failed, ts,
                                   "mac-1", std::nullopt));
  xs.push_back(make_server_message(server_type::credit_update,
                                   credit_update{"u1", 950, -50, "shoot s1"},
                                   ts, "server", "u1"));
  xs.push_back(make_server_message(server_type::prompt_change,
                                   prompt_change{"p9", prompt_action::voted},
                                   ts, "server"));
  xs.push_back(make_server_message(server_type::device_connected,
                                   device_connection{"ipad-2", "", "", {}, ts},
                                   ts, "server", "u1"));
  xs.push_back(make_server_message(
    server_type::device_disconnected,
    device_connection{"mac-1", "macOS", "Studio", ts - 5000, {}}, ts, "server"));
  admin_session_update a;
  a.session_id = "sess-4";
  a.user_id = "u7";
  a.user_email = "u7@example.com";
  a.action = admin_action::session_updated;
  a.message_count = 17;
  xs.push_back(make_server_message(server_type::admin_session_update, a, ts,
                                   "server", "admin"));
  xs.push_back(make_server_message(server_type::provider_health,
                                   sample_health(), ts, "server"));
  xs.push_back(make_pong(ts));
  batch b;
  b.messages = {xs[0], xs[2], make_pong(ts)};
  xs.push_back(make_server_message(server_type::batch, b, ts, std::nullopt));
  server_message unknown;
  unknown.type = server_type::unknown;
  unknown.type_name = "SOMETHING_NEW";
  unknown.body = unknown_data{R"({"a":[1,2,{"b":null}]})"};
  unknown.timestamp = ts;
  unknown.device_id = "server";
  xs.push_back(unknown);
  return xs;
}

} // namespace

// -- round trips ----------------------------------------------------------------

TEST(codec, every_server_message_round_trips) {
  for (auto& x : every_server_message()) {
    auto text = encode(x);
    auto back = decode_ok(text);
    EXPECT_TRUE(back == x) << text << "\n -> " << encode(back);
    EXPECT_EQ(encode(back), text);
  }
}

TEST(codec, every_client_message_round_trips) {
  std::vector<client_message> xs{make_ping(1732580000.123),
                                 make_update_progress(sample_progress())};
  client_message sub;
  sub.type = client_type::subscribe;
  sub.type_name = "SUBSCRIBE";
  sub.body = unknown_data{R"({"channel":"shoots"})"};
  xs.push_back(sub);
  client_message bare;
  bare.type = client_type::unsubscribe;
  bare.type_name = "UNSUBSCRIBE";
  bare.body = unknown_data{};
  bare.has_payload = false;
  xs.push_back(bare);
  for (auto& x : xs) {
    auto text = encode(x);
    auto back = decode_client_ok(text);
    EXPECT_TRUE(back == x) << text << "\n -> " << encode(back);
  }
}

TEST(codec, payloads_round_trip_alone) {
  auto p = sample_progress();
  auto r = from_json<shoot_progress>(to_json(p));
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r == p);
  auto h = sample_health();
  auto rh = from_json<provider_health>(to_json(h));
  ASSERT_TRUE(rh);
  EXPECT_TRUE(*rh == h);
}

// -- golden vectors: what the deployed system sends -------------------------------

TEST(codec_golden, legacy_pong_has_no_data_and_no_device) {
  auto m = decode_ok(R"({"type":"PONG","timestamp":1732580000123})");
  EXPECT_EQ(m.type, server_type::pong);
  EXPECT_EQ(m.timestamp, 1732580000123);
  EXPECT_FALSE(m.device_id);
  EXPECT_EQ(encode(make_pong(1732580000123)),
            R"({"type":"PONG","timestamp":1732580000123})");
}

TEST(codec_golden, legacy_short_device_connected) {
  auto m = decode_ok(
    R"({"type":"DEVICE_CONNECTED","data":{"deviceId":"mac-1","timestamp":1732580000000},"timestamp":1732580000001,"deviceId":"server","userId":"u1"})");
  ASSERT_EQ(m.type, server_type::device_connected);
  auto& d = std::get<device_connection>(m.body);
  EXPECT_EQ(d.device_id, "mac-1");
  EXPECT_EQ(d.platform, "");
  EXPECT_EQ(d.device_name, "");
  EXPECT_FALSE(d.connected_at);
  EXPECT_EQ(d.timestamp, 1732580000000);
  EXPECT_EQ(m.user_id, "u1");
}

TEST(codec_golden, declared_long_device_connected) {
  auto m = decode_ok(
    R"({"type":"DEVICE_DISCONNECTED","data":{"deviceId":"ios-1","platform":"iOS","deviceName":"Phone","connectedAt":1732580000000},"timestamp":1732580000001,"deviceId":"server"})");
  auto& d = std::get<device_connection>(m.body);
  EXPECT_EQ(d.platform, "iOS");
  EXPECT_EQ(d.device_name, "Phone");
  EXPECT_EQ(d.connected_at, 1732580000000);
}

TEST(codec_golden, shoot_progress_with_extras_nulls_and_floats) {
  auto m = decode_ok(
    R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s1","status":"processing","processedCount":12.0,"totalCount":48,"progress":0.25,"currentImage":null,"eta":91.5,"provider":"openai","errorMessage":null,"somethingElse":{"x":1}},"timestamp":1732580000123.0,"deviceId":"server","userId":"u1"})");
  auto& p = std::get<shoot_progress>(m.body);
  EXPECT_EQ(p.processed_count, 12);
  EXPECT_EQ(p.total_count, 48);
  EXPECT_DOUBLE_EQ(p.progress(), 0.25);
  EXPECT_FALSE(p.current_image);
  EXPECT_FALSE(p.error_message);
  EXPECT_EQ(p.eta, 91.5);
  EXPECT_EQ(m.timestamp, 1732580000123);
}

TEST(codec_golden, progress_is_computed_not_trusted) {
  auto m = decode_ok(
    R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s1","status":"queued","processedCount":0,"totalCount":0,"progress":0.9,"provider":"x"},"timestamp":1,"deviceId":"server"})");
  EXPECT_EQ(std::get<shoot_progress>(m.body).progress(), 0.0);
}

TEST(codec_golden, shoot_progress_without_provider_from_http_trigger) {
  auto m = decode_ok(
    R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s1","status":"completed","processedCount":5,"totalCount":5},"timestamp":1,"deviceId":"server","userId":"u1"})");
  EXPECT_EQ(std::get<shoot_progress>(m.body).provider, "");
}

TEST(codec_golden, batch_of_envelopes) {
  auto m = decode_ok(
    R"({"type":"BATCH","messages":[{"type":"PONG","timestamp":5},{"type":"CREDIT_UPDATE","data":{"userId":"u1","newBalance":10,"change":-2,"reason":"x"},"timestamp":6,"deviceId":"server"},{"type":"FUTURE","data":1,"timestamp":7}],"timestamp":8})");
  auto& b = std::get<batch>(m.body);
  ASSERT_EQ(b.messages.size(), 3u);
  EXPECT_EQ(b.messages[0].type, server_type::pong);
  EXPECT_EQ(std::get<credit_update>(b.messages[1].body).new_balance, 10);
  EXPECT_EQ(b.messages[2].type, server_type::unknown);
  EXPECT_EQ(b.messages[2].type_name, "FUTURE");
}

TEST(codec_golden, unknown_type_is_tolerated_and_kept) {
  auto m = decode_ok(R"({"type":"NEW_FEATURE","data":{"k":[1,2]},"timestamp":9,"deviceId":"server"})");
  EXPECT_EQ(m.type, server_type::unknown);
  EXPECT_EQ(m.type_name, "NEW_FEATURE");
  EXPECT_EQ(std::get<unknown_data>(m.body).raw_json, R"({"k":[1,2]})");
  auto bare = decode_ok(R"({"type":"NO_TIMESTAMP_EITHER"})");
  EXPECT_EQ(bare.type, server_type::unknown);
}

TEST(codec_golden, provider_health_full_shape) {
  auto m = decode_ok(
    R"({"type":"PROVIDER_HEALTH","data":{"providers":[{"provider":"openai","healthScore":98,"status":"healthy","activeRequests":2,"requestsToday":100,"costToday":1.5,"avgLatency":420.5,"successRate":0.99,"errorRate":0.01,"rateLimitHits":0,"rateLimitProximity":0.1,"recentErrors":0,"lastError":null,"lastErrorTime":null,"requestHistory":[{"timestamp":1,"value":2}],"costHistory":[],"errorHistory":[],"uptimePercentage":100,"lastDowntime":null}],"timestamp":1732580000000},"timestamp":1732580000001,"deviceId":"server","userId":"admin"})");
  auto& h = std::get<provider_health>(m.body);
  ASSERT_EQ(h.providers.size(), 1u);
  EXPECT_EQ(h.providers[0].avg_latency, 420.5);
  EXPECT_FALSE(h.providers[0].last_error);
  EXPECT_EQ(h.providers[0].request_history.size(), 1u);
}

TEST(codec_golden, admin_session_update_minimal) {
  auto m = decode_ok(
    R"({"type":"ADMIN_SESSION_UPDATE","data":{"sessionId":"s","action":"new_message"},"timestamp":1,"deviceId":"server"})");
  auto& a = std::get<admin_session_update>(m.body);
  EXPECT_EQ(a.action, admin_action::new_message);
  EXPECT_FALSE(a.message_count);
}

TEST(codec_golden, client_shapes_exact) {
  EXPECT_EQ(encode(make_ping(1732580000.5)),
            R"({"type":"PING","payload":{"timestamp":1732580000.5}})");
  EXPECT_EQ(
    encode(make_update_progress(sample_progress())),
    R"({"type":"UPDATE_PROGRESS","payload":{"shootId":"s1","status":"processing","processedCount":12,"totalCount":48,"currentImage":"IMG_0012.CR3","eta":93.5,"provider":"openai"}})");
  auto p = decode_client_ok(R"({"type":"PING"})");
  EXPECT_EQ(p.type, client_type::ping);
  EXPECT_FALSE(std::get<ping>(p.body).timestamp);
  auto u = decode_client_ok(R"({"type":"SUBSCRIBE","payload":["a"]})");
  EXPECT_EQ(u.type, client_type::subscribe);
  auto x = decode_client_ok(R"({"type":"WHATEVER"})");
  EXPECT_EQ(x.type, client_type::unknown);
  EXPECT_EQ(x.type_name, "WHATEVER");
}

TEST(codec_golden, server_shapes_exact) {
  EXPECT_EQ(
    encode(make_server_message(server_type::credit_update,
                               credit_update{"u1", 950, -50, "shoot"}, 17,
                               "server", "u1")),
    R"({"type":"CREDIT_UPDATE","data":{"userId":"u1","newBalance":950,"change":-50,"reason":"shoot"},"timestamp":17,"deviceId":"server","userId":"u1"})");
  EXPECT_EQ(
    encode(make_server_message(server_type::device_connected,
                               device_connection{"d1", "", "", {}, 16}, 17,
                               "server", "u1")),
    R"({"type":"DEVICE_CONNECTED","data":{"deviceId":"d1","timestamp":16},"timestamp":17,"deviceId":"server","userId":"u1"})");
  EXPECT_EQ(encode_envelope("SHOOT_PROGRESS", R"({"shootId":"s","x":1})", 5,
                            "dev\"1"),
            R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","x":1},"timestamp":5,"deviceId":"dev\"1"})");
}

TEST(codec_golden, strings_escape_control_characters) {
  credit_update c{"u\x01", 1, 1, "tab\there \\ \"q\" \xc3\xa9"};
  auto text = to_json(c);
  EXPECT_EQ(text,
            R"({"userId":"u\u0001","newBalance":1,"change":1,"reason":"tab\there \\ \"q\" )"
            "\xc3\xa9\"}");
  auto back = from_json<credit_update>(text);
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back == c);
}

// -- bad frames: each with its expected error --------------------------------------

struct bad_frame {
  std::string text;
  decode_errc code;
  std::string path;
};

class codec_bad_server : public ::testing::TestWithParam<bad_frame> {};

TEST_P(codec_bad_server, rejected_with_precise_error) {
  auto& c = GetParam();
  auto r = decode_server(c.text);
  ASSERT_FALSE(r) << c.text;
  EXPECT_EQ(r.error().code, c.code)
    << c.text << " -> " << to_string(r.error().code) << ": "
    << r.error().detail;
  EXPECT_EQ(r.error().path, c.path) << r.error().detail;
  EXPECT_FALSE(r.error().detail.empty());
}

static const std::string sp_head = R"({"type":"SHOOT_PROGRESS","timestamp":1,"deviceId":"server","data":)";

INSTANTIATE_TEST_SUITE_P(
  table, codec_bad_server,
  ::testing::Values(
    bad_frame{"", decode_errc::not_json, ""},
    bad_frame{"{", decode_errc::not_json, ""},
    bad_frame{"{\"type\":\"PONG\",}", decode_errc::not_json, ""},
    bad_frame{"[]", decode_errc::not_object, ""},
    bad_frame{"\"PONG\"", decode_errc::not_object, ""},
    bad_frame{"42", decode_errc::not_object, ""},
    bad_frame{"null", decode_errc::not_object, ""},
    bad_frame{"{}", decode_errc::missing_field, "type"},
    bad_frame{R"({"type":7,"timestamp":1})", decode_errc::wrong_type, "type"},
    bad_frame{R"({"type":"PONG"})", decode_errc::missing_field, "timestamp"},
    bad_frame{R"({"type":"PONG","timestamp":"now"})", decode_errc::wrong_type,
              "timestamp"},
    bad_frame{R"({"type":"PONG","timestamp":1e300})", decode_errc::out_of_range,
              "timestamp"},
    bad_frame{R"({"type":"PONG","timestamp":18446744073709551615})",
              decode_errc::out_of_range, "timestamp"},
    bad_frame{R"({"type":"PONG","timestamp":1,"deviceId":5})",
              decode_errc::wrong_type, "deviceId"},
    bad_frame{R"({"type":"SHOOT_PROGRESS","timestamp":1})",
              decode_errc::missing_field, "data"},
    bad_frame{sp_head + "[]}", decode_errc::wrong_type, "data"},
    bad_frame{sp_head + R"({"status":"queued","processedCount":1,"totalCount":2}})",
              decode_errc::missing_field, "data.shootId"},
    bad_frame{sp_head + R"({"shootId":"s","status":"paused","processedCount":1,"totalCount":2}})",
              decode_errc::bad_enum, "data.status"},
    bad_frame{sp_head + R"({"shootId":"s","status":"queued","processedCount":"1","totalCount":2}})",
              decode_errc::wrong_type, "data.processedCount"},
    bad_frame{sp_head + R"({"shootId":"s","status":"queued","processedCount":1,"totalCount":true}})",
              decode_errc::wrong_type, "data.totalCount"},
    bad_frame{sp_head + R"({"shootId":"s","status":"queued","processedCount":1,"totalCount":2,"eta":"soon"}})",
              decode_errc::wrong_type, "data.eta"},
    bad_frame{R"({"type":"CREDIT_UPDATE","timestamp":1,"data":{"userId":"u","change":1}})",
              decode_errc::missing_field, "data.newBalance"},
    bad_frame{R"({"type":"PROMPT_CHANGE","timestamp":1,"data":{"promptId":"p","action":"liked"}})",
              decode_errc::bad_enum, "data.action"},
    bad_frame{R"({"type":"DEVICE_CONNECTED","timestamp":1,"data":{"timestamp":1}})",
              decode_errc::missing_field, "data.deviceId"},
    bad_frame{R"({"type":"ADMIN_SESSION_UPDATE","timestamp":1,"data":{"sessionId":"s","action":"new"}})",
              decode_errc::bad_enum, "data.action"},
    bad_frame{R"({"type":"PROVIDER_HEALTH","timestamp":1,"data":{"providers":[{"provider":"a","status":"healthy"},{"provider":"b","status":"dead"}]}})",
              decode_errc::bad_enum, "data.providers[1].status"},
    bad_frame{R"({"type":"PROVIDER_HEALTH","timestamp":1,"data":{"providers":[{"provider":"a","status":"healthy","costHistory":[{"timestamp":1}]}]}})",
              decode_errc::missing_field, "data.providers[0].costHistory[0].value"},
    bad_frame{R"({"type":"PROVIDER_HEALTH","timestamp":1,"data":{"providers":{}}})",
              decode_errc::wrong_type, "data.providers"},
    bad_frame{R"({"type":"BATCH","timestamp":1})", decode_errc::missing_field,
              "messages"},
    bad_frame{R"({"type":"BATCH","timestamp":1,"messages":[{"type":"PONG","timestamp":1},3]})",
              decode_errc::wrong_type, "messages[1]"},
    bad_frame{R"({"type":"BATCH","timestamp":1,"messages":[{"type":"CREDIT_UPDATE","timestamp":1,"data":{"userId":"u","newBalance":1,"change":1.5e40}}]})",
              decode_errc::out_of_range, "messages[0].data.change"}));

TEST(codec_limits, frame_size_limit_is_enforced) {
  decode_limits lim;
  lim.max_frame_bytes = 64;
  std::string big = R"({"type":"PONG","timestamp":1,"pad":")" + std::string(100, 'x') + "\"}";
  auto r = decode_server(big, lim);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, decode_errc::too_large);
  lim.max_frame_bytes = 4096;
  EXPECT_TRUE(decode_server(big, lim));
}

TEST(codec_limits, nesting_limit_is_enforced) {
  std::string deep = R"({"type":"X","data":)";
  for (int i = 0; i < 40; ++i)
    deep += "[";
  for (int i = 0; i < 40; ++i)
    deep += "]";
  deep += "}";
  auto r = decode_server(deep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, decode_errc::too_deep);
  decode_limits lim;
  lim.max_depth = 64;
  EXPECT_TRUE(decode_server(deep, lim));
}

TEST(codec_bad_client, errors_name_the_field) {
  auto r = decode_client(R"({"type":"UPDATE_PROGRESS"})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, decode_errc::missing_field);
  EXPECT_EQ(r.error().path, "payload");
  r = decode_client(R"({"type":"UPDATE_PROGRESS","payload":{"shootId":1}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().path, "payload.shootId");
  r = decode_client(R"({"payload":{}})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().path, "type");
}

// "PING -> PONG to the sender": the server uses nothing of its payload, so
// none keeps it from its PONG (an app that sends its timestamp as text, a
// payload of its own, or a number past a double's range).
TEST(codec_bad_client, a_ping_is_a_ping_whatever_it_carries) {
  for (auto text : {R"({"type":"PING","payload":{"timestamp":"2024-11-26T00:00:00Z"}})",
                    R"({"type":"PING","payload":"x"})", R"({"type":"PING","payload":[]})",
                    R"({"type":"PING","payload":{"timestamp":1e999}})",
                    R"({"type":"PING","payload":null})"}) {
    decode_limits lim;
    lim.keep_raw_payload = true; // as the server decodes
    auto r = decode_client(text, lim);
    ASSERT_TRUE(r) << text << ": " << r.error().detail;
    EXPECT_EQ(r->type, client_type::ping) << text;
    EXPECT_FALSE(std::get<ping>(r->body).timestamp) << text;
  }
  auto r = decode_client(R"({"type":"PING","payload":{"timestamp":1732580000.5}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<ping>(r->body).timestamp, 1732580000.5);
}

// "UPDATE_PROGRESS -> SHOOT_PROGRESS with the payload as data": relayed as
// received, but with numbers as JavaScript (the deployed relay) writes them
// and the counts as the stream keeps them (rounded), so that a device that
// replays or takes a SNAPSHOT sees what the live one saw.
TEST(codec_bad_client, a_relayed_payload_keeps_its_numbers_as_javascript_writes_them) {
  decode_limits lim;
  lim.keep_raw_payload = true;
  auto r = decode_client(
    R"({"type":"UPDATE_PROGRESS","payload":{"shootId":"s1","status":"processing",)"
    R"("processedCount":1.5,"totalCount":1e1,"eta":12.5,"extra":{"f":0.1,"z":-0.0,"big":1e21,)"
    R"("n":[1,2.0,-3],"s":"\u00e9\n"}}})", lim);
  ASSERT_TRUE(r) << r.error().detail;
  EXPECT_EQ(r->raw_payload,
            "{\"shootId\":\"s1\",\"status\":\"processing\",\"processedCount\":2,"
            "\"totalCount\":10,\"eta\":12.5,\"extra\":{\"f\":0.1,\"z\":0,\"big\":1e+21,"
            "\"n\":[1,2,-3],\"s\":\"\xc3\xa9\\n\"}}");
  EXPECT_EQ(std::get<shoot_progress>(r->body).processed_count, 2);
}

TEST(codec_bad_client, invalid_utf8_is_rejected) {
  auto r = decode_client("{\"type\":\"PING\xff\"}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, decode_errc::not_json);
}

TEST(codec_limits, overflowing_numbers_in_unknown_data_are_rejected) {
  // Boost.JSON reads 1e400 as infinity; keeping it would relay invalid JSON.
  auto r = decode_server(R"({"type":"LATER","data":{"a":[1,1e400]},"timestamp":1})");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, decode_errc::out_of_range);
  EXPECT_EQ(r.error().path, "data.a[1]");
}

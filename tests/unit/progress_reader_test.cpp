// The one-pass SHOOT_PROGRESS reader against the general decoder: whatever
// the reader accepts must decode to the same message the general way, and
// whatever it declines must reach the general decoder (and its errors).
// decode_server_into, which decodes in place, answers as decode_server does.
#include <gtest/gtest.h>

#include <string>

#include "kullsync/messages/codec.hpp"
#include "progress_reader.hpp"

using namespace kullsync::msg;

namespace {

const std::string plain
  = R"({"type":"SHOOT_PROGRESS","data":{"shootId":"wedding-0412","status":"processing","processedCount":130,"totalCount":250,"currentImage":"IMG_0130.CR3","eta":72.5,"provider":"openai"},"timestamp":1732580000123,"deviceId":"server","userId":"u1"})";

/// A message with every field set, which decode_server_into must replace.
server_message stale() {
  server_message m;
  m.type = server_type::credit_update;
  m.type_name = "CREDIT_UPDATE";
  m.body = credit_update{"u9", 5, -1, "stale"};
  m.timestamp = 1;
  m.device_id = "old-device";
  m.user_id = "u9";
  return m;
}

/// decode_server_into agrees with decode_server, whatever `out` held.
void expect_into_alike(const std::string& text, const decode_limits& lim) {
  auto whole = decode_server(text, lim);
  auto into = stale();
  auto err = decode_server_into(text, into, lim);
  ASSERT_EQ(bool(whole), !err) << text;
  if (whole) {
    EXPECT_EQ(into, *whole) << text;
  } else {
    EXPECT_EQ(err->code, whole.error().code);
    EXPECT_EQ(err->detail, whole.error().detail);
  }
}

/// The reader takes `text` and agrees with the general decoder.
void expect_read_alike(const std::string& text) {
  auto fast = detail::read_progress_frame(text, 32);
  ASSERT_TRUE(fast) << "declined: " << text;
  auto general = detail::decode_server_general(text, {});
  ASSERT_TRUE(general) << general.error().detail;
  EXPECT_EQ(*fast, *general) << text;
  auto both = decode_server(text);
  ASSERT_TRUE(both);
  EXPECT_EQ(*both, *general);
  expect_into_alike(text, {});
}

/// The reader declines `text`; decode_server says what the general decoder says.
void expect_declined(const std::string& text, size_t max_depth = 32) {
  EXPECT_FALSE(detail::read_progress_frame(text, max_depth)) << text;
  decode_limits lim;
  lim.max_depth = max_depth;
  auto general = detail::decode_server_general(text, lim);
  auto both = decode_server(text, lim);
  ASSERT_EQ(bool(general), bool(both)) << text;
  if (general) {
    EXPECT_EQ(*both, *general);
  } else {
    EXPECT_EQ(both.error().code, general.error().code);
    EXPECT_EQ(both.error().detail, general.error().detail);
  }
  expect_into_alike(text, lim);
}

TEST(progress_reader, reads_what_the_legacy_server_sends) {
  expect_read_alike(plain);
  auto m = *detail::read_progress_frame(plain, 32);
  auto& p = std::get<shoot_progress>(m.body);
  EXPECT_EQ(m.type, server_type::shoot_progress);
  EXPECT_EQ(m.type_name, "SHOOT_PROGRESS");
  EXPECT_EQ(m.timestamp, 1732580000123);
  EXPECT_EQ(m.device_id, "server");
  EXPECT_EQ(m.user_id, "u1");
  EXPECT_EQ(p.shoot_id, "wedding-0412");
  EXPECT_EQ(p.status, shoot_status::processing);
  EXPECT_EQ(p.processed_count, 130);
  EXPECT_EQ(p.total_count, 250);
  EXPECT_EQ(p.current_image, "IMG_0130.CR3");
  EXPECT_EQ(p.eta, 72.5);
  EXPECT_EQ(p.provider, "openai");
  EXPECT_FALSE(p.error_message);
}

TEST(progress_reader, reads_the_tolerated_variations_alike) {
  // escapes, unicode, long strings (read in pieces)
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"we\"dd\\ing \u00e9\ud83d\ude00","status":"failed","processedCount":1,"totalCount":2,"errorMessage":"line\nbreak\ttab","provider":"p"},"timestamp":1})");
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","data":{"shootId":")" + std::string(5000, 'x')
                    + R"(\u0041","status":"queued","processedCount":0,"totalCount":0},"timestamp":1})");
  // float counts round, integer eta, negative and zero numbers
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","status":"processing","processedCount":129.6,"totalCount":250.0,"eta":3},"timestamp":1.0e3})");
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","status":"completed","processedCount":-1,"totalCount":0,"eta":-0.5},"timestamp":-5})");
  // nulls are absent; provider null is empty
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2,"currentImage":null,"eta":null,"provider":null,"errorMessage":null},"timestamp":1,"deviceId":null,"userId":null})");
  // no provider (HTTP trigger), scalar extras at both levels, whitespace
  expect_read_alike(" {\"type\" : \"SHOOT_PROGRESS\", \"x\":true, \"y\":null, \"z\":1e999, \"w\":18446744073709551615,\n"
                    "\"data\":{\"shootId\":\"s\",\"progress\":0.5,\"status\":\"queued\",\"processedCount\":1,\"totalCount\":2,\"k\":\"v\"},\"timestamp\":1} \n");
  // v2: the stream position, also as a float and null (absent)
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2},"timestamp":1,"seq":42})");
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","seq":7.0,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2},"timestamp":1})");
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","seq":null,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2},"timestamp":1})");
  // keys in any order after "type"
  expect_read_alike(R"({"type":"SHOOT_PROGRESS","timestamp":7,"userId":"u","data":{"totalCount":2,"processedCount":1,"status":"queued","shootId":"s"}})");
}

TEST(progress_reader, declines_other_shapes_and_the_general_decoder_answers) {
  // other types, "data" before "type"
  expect_declined(R"({"type":"PONG","timestamp":1})");
  expect_declined(R"({"type":"CREDIT_UPDATE","timestamp":1,"data":{"userId":"u","newBalance":1,"change":1}})");
  expect_declined(R"({"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2},"type":"SHOOT_PROGRESS","timestamp":1})");
  // nested extras, duplicate keys (the general decoder keeps the last)
  expect_declined(R"({"type":"SHOOT_PROGRESS","meta":{"a":1},"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2},"timestamp":1})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","tags":[],"status":"queued","processedCount":1,"totalCount":2},"timestamp":1})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"a","shootId":"b","status":"queued","processedCount":1,"totalCount":2},"timestamp":1})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"timestamp":2,"data":{"shootId":"a","status":"queued","processedCount":1,"totalCount":2}})");
  // errors: missing, null, wrong type, bad enum, out of range, not finite
  expect_declined(R"({"type":"SHOOT_PROGRESS","data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":null,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":null})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":5})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":null,"status":"queued","processedCount":1,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":"s","status":"paused","processedCount":1,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":"1","totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2,"eta":true}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":18446744073709551615,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":1e19,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2,"eta":1e999}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"deviceId":5,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"seq":-3,"data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})");
  expect_declined(R"({"type":"SHOOT_PROGRESS","timestamp":1,"seq":"3","data":{"shootId":"s","status":"queued","processedCount":1,"totalCount":2}})");
  // not JSON, trailing data, not an object, too deep for the limit
  expect_declined(plain.substr(0, plain.size() - 1));
  expect_declined(plain + "x");
  expect_declined(plain + plain);
  expect_declined("[" + plain + "]");
  expect_declined("\"SHOOT_PROGRESS\"");
  expect_declined(plain, 1);
}

} // namespace

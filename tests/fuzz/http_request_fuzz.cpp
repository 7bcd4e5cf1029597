// libFuzzer target: an HTTP request as the server reads it, up to routing:
// Beast's parser (header, then body, with the server's limits), the
// server's refusals (framing, upgrades), then for a trigger's path the body
// as JSON, the id checks and the payload decoders. Nothing may crash, throw
// out or leak.
#include <boost/json/src.hpp>

#include <cstdint>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "http_checks.hpp"
#include "kullsync/messages/json_value.hpp"
#include "kullsync/messages/keys.hpp"
#include "kullsync/messages/types.hpp"

namespace http = boost::beast::http;
namespace json = boost::json;
using namespace kullsync;

namespace {

void route(const http::request<http::string_body>& req) {
  if (boost::beast::websocket::is_upgrade(req)) {
    (void)detail::refuse_upgrade(req);
    return;
  }
  std::string target{req.target()};
  auto path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::post)
    return;
  boost::system::error_code ec;
  auto body = json::parse(req.body(), ec);
  if (ec || !body.is_object())
    return;
  auto& o = body.get_object();
  for (auto key : {msg::keys::user_id, msg::keys::shoot_id, msg::keys::prompt_id})
    if (auto* v = o.if_contains(key); v && v->is_string())
      (void)msg::valid_id(v->get_string());
  if (path == "/api/sync/shoot-progress") {
    (void)msg::from_json_value<msg::shoot_progress>(body);
  } else if (path == "/api/sync/credit-update") {
    (void)msg::from_json_value<msg::credit_update>(body);
  } else if (path == "/api/sync/prompt-change") {
    (void)msg::from_json_value<msg::prompt_change>(body);
  } else if (path == "/api/sync/admin-session") {
    (void)msg::from_json_value<msg::admin_session_update>(body);
  } else if (path == "/api/sync/provider-health") {
    (void)msg::from_json_value<msg::provider_health>(body);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.body_limit(64 * 1024);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  boost::system::error_code ec;
  auto n = parser.put(boost::asio::buffer(data, size), ec);
  (void)n;
  if (ec && ec != http::error::need_more)
    return 0;
  if (!parser.is_header_done())
    return 0;
  if (!detail::framing_ok(parser.get().base()))
    return 0;
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done())
      return 0;
  }
  route(parser.get());
  return 0;
}

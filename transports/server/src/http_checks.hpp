#pragma once

// Private to the server side of kullsync_transports: what the server refuses
// in an HTTP request before acting on it. Header-only, so that the HTTP
// fuzzer (tests/fuzz) runs exactly these rules.

#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <strings.h>
#include <utility>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace kullsync::detail {

namespace http = boost::beast::http;

/// A Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 4.1): 22
/// base64 characters and "==".
inline bool valid_key(std::string_view k) {
  if (k.size() != 24 || k.substr(22) != "==")
    return false;
  for (char c : k.substr(0, 22))
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/')
      return false;
  return true;
}

/// What the handshake would refuse, decided before anyone hears of the
/// socket: a refused upgrade never joins its user.
inline std::optional<std::pair<unsigned, const char*>>
refuse_upgrade(const http::request<http::string_body>& req) {
  if (req.method() != http::verb::get)
    return std::make_pair(400u, R"({"error":"WebSocket upgrade needs GET"})");
  if (req.version() < 11)
    return std::make_pair(400u, R"({"error":"WebSocket upgrade needs HTTP/1.1"})");
  if (!valid_key(req[http::field::sec_websocket_key]))
    return std::make_pair(400u, R"({"error":"Missing or invalid Sec-WebSocket-Key"})");
  if (req[http::field::sec_websocket_version] != "13")
    return std::make_pair(426u, R"({"error":"Unsupported Sec-WebSocket-Version: 13 only"})");
  return std::nullopt;
}

/// Framing a proxy could read otherwise (RFC 9112 6.3, request smuggling):
/// a Transfer-Encoding other than `chunked` alone, or one together with a
/// Content-Length.
template <class Fields>
bool framing_ok(const http::header<true, Fields>& h) {
  auto te = h[http::field::transfer_encoding];
  if (te.empty())
    return true;
  std::string t{te};
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
    t.pop_back();
  bool only_chunked = t.size() == 7 && strncasecmp(t.data(), "chunked", 7) == 0;
  return only_chunked && h.count(http::field::content_length) == 0;
}

} // namespace kullsync::detail

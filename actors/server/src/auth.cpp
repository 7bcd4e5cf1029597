#include "kullsync/server/auth.hpp"

#include "kullsync/messages/types.hpp"
#include "kullsync/transports/subprotocol.hpp"

#include <cctype>

namespace kullsync::server {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}


} // namespace

std::optional<std::string> path_unescape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    int hi = i + 2 < in.size() ? hex_value(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string query_unescape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size()
               && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += in[i]; // a stray '%' stays, as URLSearchParams keeps it
    }
  }
  return out;
}

std::optional<std::string> query_param(std::string_view target,
                                       std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  if (auto hash = query.find('#'); hash != std::string_view::npos)
    query = query.substr(0, hash);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    auto k = query_unescape(pair.substr(0, eq));
    if (k == key)
      return eq == std::string_view::npos ? std::string{}
                                          : query_unescape(pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    query = query.substr(amp + 1);
  }
  return std::nullopt;
}

std::string extract_token(std::string_view target, const header_list& headers) {
  if (auto t = query_param(target, "token"); t && !t->empty())
    return *t;
  // Every Authorization field, not just the first: a proxy may add its own
  // (Basic) before the client's Bearer one.
  for (auto& [name, value] : headers)
    if (iequals(name, "authorization"))
      if (auto credentials = bearer_credentials(value))
        return std::string{*credentials};
  return {};
}

bool offers_subprotocol(const header_list& headers, std::string_view protocol) {
  // The offer may be split over several fields (RFC 6455 4.1).
  for (auto& [name, value] : headers)
    if (iequals(name, "sec-websocket-protocol")
        && kullsync::offers_subprotocol(value, protocol))
      return true;
  return false;
}

std::string device_namer::next(int64_t now_ms) {
  static constexpr char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string suffix;
  std::lock_guard<std::mutex> guard{mtx_};
  for (int i = 0; i < 9; ++i)
    suffix += digits[rng_() % 36];
  return "web-" + std::to_string(now_ms) + "-" + suffix;
}

legacy_authenticator::legacy_authenticator(uint64_t seed) : names_(seed) {
  // nop
}

auth_result legacy_authenticator::authenticate(const auth_request& req) {
  auth_result r;
  auto& token = req.token;
  if (token.empty()) {
    r.failure = {close_code::no_token, "No token provided"};
    return r;
  }
  auto colon = token.find(':');
  identity who;
  who.user_id = token.substr(0, colon);
  if (colon != std::string::npos)
    who.device_id = token.substr(colon + 1);
  if (who.user_id.empty()) {
    r.failure = {close_code::invalid_token, "Invalid token"};
    return r;
  }
  if (!msg::valid_id(who.user_id)
      || (!who.device_id.empty() && !msg::valid_id(who.device_id))) {
    r.failure = {close_code::invalid_token,
                 "Invalid token: ids must be UTF-8 without control characters, "
                 "at most 128 bytes"};
    return r;
  }
  if (who.device_id.empty() && req.v2 && req.device && !req.device->empty()) {
    // As a signed token without a `device` claim: a v2 client resends what
    // was not acknowledged under its ids, which must stay one device's. (A
    // v1 socket keeps the deployed server's generated id.)
    if (!msg::valid_id(*req.device)) {
      r.failure = {close_code::invalid_token, "Invalid token: device is not a valid id"};
      return r;
    }
    who.device_id = *req.device;
  }
  if (who.device_id.empty()) // "u1" or "u1:" (the legacy server's falsy check)
    who.device_id = names_.next(req.now_ms);
  r.who = std::move(who);
  return r;
}

} // namespace kullsync::server

#pragma once

// Private to the server: what the HTTP API's files share (http_api.cpp: the
// triggers, state, metrics and health; operator_api.cpp: the operators'
// users/* and nodes routes).

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/sha.h>

#include <boost/json/value.hpp>

#include "kullsync/log.hpp"
#include "limits.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

inline constexpr std::string_view api_prefix = "/api/sync";

/// A key's SHA-256: keys are compared by digest, in constant time, so that
/// neither a key's length nor its first differing byte shows in the time.
using key_digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

key_digest digest(std::string_view key);

struct http_api_state {
  std::shared_ptr<const session_env> env;
  std::vector<key_digest> keys;
  std::unique_ptr<bucket_table> per_key; // request rate per API key
  log_throttle refusals_logged;
  std::shared_ptr<spdlog::logger> log = log::get("server.http_api");
  static inline const char* name = "kullsync.http_api";
};

using api_ptr = http_handler_actor::stateful_pointer<http_api_state>;

http_response json_response(unsigned status, const boost::json::value& v);
http_response error(unsigned status, std::string_view message);
/// A publish that failed: 503 when it certainly did not happen (retry at
/// will), 504 with "outcome":"unknown" when it may have (retry only with
/// the same Idempotency-Key).
http_response unpublished(const caf::error& why, std::string_view what);
int64_t now_ms(api_ptr self);

/// With API keys configured: the request's `Authorization: Bearer` key, if
/// it is one of them and within its rate; else the answer is sent (401 or
/// 429) and false returned.
bool authorised(api_ptr self, const http_exchange& ex);

/// The operators' routes (operator_api.cpp): `sub` is the path after
/// /api/sync; true if it was one of them (answered).
bool operator_route(api_ptr self, const http_exchange& ex, std::string_view sub);

} // namespace kullsync::server

#pragma once

/// Who is on the other end of a socket. Authentication sits behind an
/// interface so that signed tokens can replace the legacy scheme.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "kullsync/transports/transport.hpp"

namespace kullsync::server {

struct identity {
  std::string user_id;
  std::string device_id;
};

struct auth_failure {
  uint16_t close_code = close_code::invalid_token;
  std::string reason;
};

struct auth_result {
  std::optional<identity> who;
  auth_failure failure; // meaningful when !who
};

/// The token of a handshake: `?token=` in the target (percent-decoded), else
/// an `Authorization: Bearer` header. Empty when there is none.
std::string extract_token(std::string_view target, const header_list& headers);

/// True if the handshake's Sec-WebSocket-Protocol header lists `protocol`.
bool offers_subprotocol(const header_list& headers, std::string_view protocol);

/// Decodes %XX and '+' in a query value.
std::string query_unescape(std::string_view in);

/// The value of query parameter `key` in `target`, if present.
std::optional<std::string> query_param(std::string_view target,
                                       std::string_view key);

class authenticator {
public:
  virtual ~authenticator() = default;
  /// `now_ms` is epoch time; implementations must not block.
  virtual auth_result authenticate(const std::string& token, int64_t now_ms) = 0;
};

/// The deployed scheme: `userId:deviceId`, verified by nobody. No token:
/// 4001 "No token provided"; empty user: 4002 "Invalid token"; no ':': the
/// whole token is the user and the device is `web-<epoch ms>-<random>`.
/// Thread-safe.
class legacy_authenticator : public authenticator {
public:
  explicit legacy_authenticator(uint64_t seed = std::random_device{}());
  auth_result authenticate(const std::string& token, int64_t now_ms) override;

private:
  std::mutex mtx_;
  std::mt19937_64 rng_;
};

} // namespace kullsync::server

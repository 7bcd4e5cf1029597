#pragma once

/// Who is on the other end of a socket or an HTTP request. Three schemes
/// behind one interface (`make_authenticator`): signed tokens (JWT, the
/// default), the deployed `userId:deviceId` (legacy), and both during a
/// migration (jwt+legacy: JWTs verified, legacy tokens from v1 sockets).

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "kullsync/transports/close_code.hpp"
#include "kullsync/transports/headers.hpp"

namespace kullsync::server {

/// A string on the heap, one pointer wide, copied by value: for what is
/// rare where every socket pays for the room.
class rare_string {
public:
  rare_string() = default;
  explicit rare_string(std::string s) : p_(std::make_unique<const std::string>(std::move(s))) {}
  rare_string(const rare_string& x) : p_(x.p_ ? std::make_unique<const std::string>(*x.p_) : nullptr) {}
  rare_string(rare_string&&) noexcept = default;
  rare_string& operator=(rare_string x) noexcept {
    p_ = std::move(x.p_);
    return *this;
  }
  const std::string* get() const { return p_.get(); }

private:
  std::unique_ptr<const std::string> p_;
};

struct identity {
  std::string user_id;   // the stream the socket joins
  std::string device_id;
  bool admin = false;    // receives the admin feed
  std::optional<int64_t> expires_at_ms; // the token's expiry (JWT)
  std::optional<int64_t> issued_at_ms;  // its `iat` (JWT)
  bool legacy = false;   // an unsigned userId:deviceId (jwt+legacy mode)
  /// An admin token's `sub` (its user_id is the admin feed's): what its
  /// revocations and refreshes are judged by. On the heap: rare, and a
  /// session's state has no room for another string.
  rare_string admin_subject;
  /// The user the token is of: its `sub`.
  const std::string& subject() const {
    return admin_subject.get() ? *admin_subject.get() : user_id;
  }
};

struct auth_failure {
  uint16_t close_code = close_code::invalid_token;
  std::string reason; // says why, never quotes the token
};

struct auth_result {
  std::optional<identity> who;
  auth_failure failure; // meaningful when !who
};

/// What a socket (or an HTTP request) presents.
struct auth_request {
  std::string token;
  std::optional<std::string> device; // the query's `device` parameter
  bool v2 = false;                   // the socket speaks kull.v2
  int64_t now_ms = 0;                // epoch time
};

/// The token of a handshake: `?token=` in the target (percent-decoded), else
/// an `Authorization: Bearer` header. Empty when there is none.
std::string extract_token(std::string_view target, const header_list& headers);

/// True if the handshake's Sec-WebSocket-Protocol header lists `protocol`.
bool offers_subprotocol(const header_list& headers, std::string_view protocol);

/// Decodes %XX and '+' in a query value.
std::string query_unescape(std::string_view in);
/// A URL path segment with its %XX decoded ('+' stays); nothing when an
/// escape is broken.
std::optional<std::string> path_unescape(std::string_view in);

/// The value of query parameter `key` in `target`, if present.
std::optional<std::string> query_param(std::string_view target,
                                       std::string_view key);

class authenticator {
public:
  virtual ~authenticator() = default;
  /// Implementations must not block and must be thread-safe.
  virtual auth_result authenticate(const auth_request& req) = 0;
  /// Whether it checks signed tokens (which a revocation can cover).
  virtual bool signed_tokens() const { return false; }
  /// How long past a token's expiry it still takes the token (clock skew):
  /// a socket whose token expired is closed only once this has passed too.
  virtual int64_t expiry_leeway_ms() const { return 0; }
};

/// Names a device that did not name itself: `web-<epoch ms>-<9 random>`, as
/// the deployed server does. Thread-safe.
class device_namer {
public:
  explicit device_namer(uint64_t seed) : rng_(seed) {}
  std::string next(int64_t now_ms);

private:
  std::mutex mtx_;
  std::mt19937_64 rng_;
};

/// The deployed scheme: `userId:deviceId`, verified by nobody. No token:
/// 4001 "No token provided"; empty user: 4002 "Invalid token"; no ':': the
/// whole token is the user and the device is generated. Ids that are not
/// valid UTF-8 or too long are refused with 4002.
class legacy_authenticator : public authenticator {
public:
  explicit legacy_authenticator(uint64_t seed = std::random_device{}());
  auth_result authenticate(const auth_request& req) override;

private:
  device_namer names_;
};

enum class auth_mode { jwt, legacy, jwt_and_legacy };

/// How the server checks tokens (the flags --auth, --jwt-*, --admin-user).
struct auth_options {
  auth_mode mode = auth_mode::jwt;
  std::string hs256_secret;   // the shared secret: HS256
  std::string public_key_pem; // an RSA (RS256) or EC P-256 (ES256) public key
  std::string audience;       // checked when not empty
  std::string issuer;         // checked when not empty
  int64_t leeway_ms = 0;      // clock skew allowed on exp and nbf
  /// The longest lifetime a token may have (exp - iat, or exp - now without
  /// iat): longer ones are refused (4002), so that a revocation kept this
  /// long covers every token it names (--max-token-lifetime).
  int64_t max_lifetime_ms = 86'400'000;
  /// The admin feed's stream. In legacy mode whoever connects as this user
  /// receives it (as deployed); with JWTs only tokens with `admin: true` do,
  /// whatever their `sub`, and a token without it may not join it.
  std::string admin_user = "admin";
  uint64_t seed = std::random_device{}(); // generated device ids
};

/// The scheme `opts` describes. Throws std::invalid_argument with a message
/// that names the flag to fix (jwt mode without a key, a key that does not
/// load, an unsupported key type).
std::shared_ptr<authenticator> make_authenticator(const auth_options& opts);

/// Reads a whole file for a key option; throws std::invalid_argument naming
/// `flag` when it cannot.
std::string read_key_file(const std::string& path, std::string_view flag);

} // namespace kullsync::server

#include "kullsync/messages/types.hpp"

#include <array>
#include <tuple>
#include <utility>

namespace kullsync::msg {

namespace {

template <class E, size_t N>
bool parse_enum(std::string_view str, E& x,
                const std::array<std::string_view, N>& names) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == str) {
      x = static_cast<E>(i);
      return true;
    }
  return false;
}

constexpr std::array<std::string_view, 4> shoot_status_names{
  "queued", "processing", "completed", "failed"};
constexpr std::array<std::string_view, 4> prompt_action_names{
  "created", "updated", "deleted", "voted"};
constexpr std::array<std::string_view, 2> admin_action_names{
  "new_message", "session_updated"};
constexpr std::array<std::string_view, 3> health_status_names{
  "healthy", "degraded", "unhealthy"};
constexpr std::array<std::string_view, 7> nack_code_names{
  "invalid", "forbidden", "rate_limited", "too_large", "unavailable",
  "superseded", "outbox_full"};
constexpr std::array<std::string_view, 15> server_type_names{
  "SHOOT_PROGRESS",       "CREDIT_UPDATE",   "PROMPT_CHANGE",
  "DEVICE_CONNECTED",     "DEVICE_DISCONNECTED",
  "ADMIN_SESSION_UPDATE", "PROVIDER_HEALTH", "PONG",
  "BATCH",                "WELCOME",         "SNAPSHOT",
  "ACK",                  "NACK",            "REFRESHED",
  "UNKNOWN"};
static_assert(server_type_names.size() == static_cast<size_t>(server_type::unknown) + 1);
constexpr std::array<std::string_view, 6> client_type_names{
  "PING", "UPDATE_PROGRESS", "SUBSCRIBE", "UNSUBSCRIBE", "REFRESH", "UNKNOWN"};
static_assert(client_type_names.size() == static_cast<size_t>(client_type::unknown) + 1);

} // namespace

std::string_view to_string(shoot_status x) {
  return shoot_status_names[static_cast<size_t>(x)];
}
std::string_view to_string(prompt_action x) {
  return prompt_action_names[static_cast<size_t>(x)];
}
std::string_view to_string(admin_action x) {
  return admin_action_names[static_cast<size_t>(x)];
}
std::string_view to_string(health_status x) {
  return health_status_names[static_cast<size_t>(x)];
}
std::string_view to_string(nack_code x) {
  return nack_code_names[static_cast<size_t>(x)];
}
bool from_string(std::string_view str, nack_code& x) {
  return parse_enum(str, x, nack_code_names);
}

namespace {
bool printable_utf8(std::string_view id);
} // namespace

bool valid_id(std::string_view id) {
  return !id.empty() && id.size() <= max_id_bytes && printable_utf8(id);
}

bool valid_message_id(std::string_view id) {
  return !id.empty() && utf8_length(id) <= max_message_id && printable_utf8(id);
}

namespace {
bool printable_utf8(std::string_view id) {
  auto* p = reinterpret_cast<const unsigned char*>(id.data());
  auto* end = p + id.size();
  while (p < end) {
    unsigned c = *p++;
    if (c < 0x20 || c == 0x7f)
      return false;
    if (c < 0x80)
      continue;
    // Lead byte: the length of the sequence and the smallest code point it
    // may encode (overlong forms are invalid), RFC 3629.
    size_t more;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) { more = 1; cp = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { more = 2; cp = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { more = 3; cp = c & 0x07; min = 0x10000; }
    else return false;
    if (static_cast<size_t>(end - p) < more)
      return false;
    for (size_t i = 0; i < more; ++i) {
      if ((p[i] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    p += more;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
        || (cp >= 0x80 && cp < 0xa0))
      return false;
  }
  return true;
}
} // namespace

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    n += (static_cast<unsigned char>(c) & 0xc0) != 0x80 ? 1 : 0; // not a continuation
  return n;
}

std::string_view utf8_prefix(std::string_view s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && chars++ == n)
      return s.substr(0, i);
  return s;
}

bool is_numbered(server_type x) {
  // Every type listed: a new one does not build until it is decided.
  switch (x) {
    case server_type::shoot_progress:
    case server_type::credit_update:
    case server_type::prompt_change:
    case server_type::admin_session_update:
      return true;
    case server_type::device_connected:
    case server_type::device_disconnected:
    case server_type::provider_health:
    case server_type::pong:
    case server_type::batch:
    case server_type::welcome:
    case server_type::snapshot:
    case server_type::ack:
    case server_type::nack:
    case server_type::refreshed:
    case server_type::unknown:
      return false;
  }
  return false;
}

bool holds_position(const server_message& m) {
  // One of a type this build does not know is in the stream all the same.
  return m.seq.has_value() && (is_numbered(m.type) || m.type == server_type::unknown);
}

std::string_view to_string(server_type x) {
  return server_type_names[static_cast<size_t>(x)];
}
std::string_view to_string(client_type x) {
  return client_type_names[static_cast<size_t>(x)];
}

bool from_string(std::string_view str, shoot_status& x) {
  return parse_enum(str, x, shoot_status_names);
}
bool from_string(std::string_view str, prompt_action& x) {
  return parse_enum(str, x, prompt_action_names);
}
bool from_string(std::string_view str, admin_action& x) {
  return parse_enum(str, x, admin_action_names);
}
bool from_string(std::string_view str, health_status& x) {
  return parse_enum(str, x, health_status_names);
}

server_type server_type_from(std::string_view wire) {
  auto x = server_type::unknown;
  // "UNKNOWN" is our label, not a wire type: it stays unknown either way.
  parse_enum(wire, x, server_type_names);
  return x;
}

client_type client_type_from(std::string_view wire) {
  auto x = client_type::unknown;
  parse_enum(wire, x, client_type_names);
  return x;
}

double shoot_progress::progress() const {
  if (total_count <= 0)
    return 0.0;
  auto p = static_cast<double>(processed_count)
           / static_cast<double>(total_count);
  return p < 0.0 ? 0.0 : (p > 1.0 ? 1.0 : p);
}

server_message make_server_message(server_type type, server_body body,
                                   int64_t timestamp_ms,
                                   std::optional<std::string> device_id,
                                   std::optional<std::string> user_id) {
  server_message x;
  x.type = type;
  x.type_name = std::string{to_string(type)};
  x.body = std::move(body);
  x.timestamp = timestamp_ms;
  x.device_id = std::move(device_id);
  x.user_id = std::move(user_id);
  return x;
}

server_message make_pong(int64_t timestamp_ms) {
  return make_server_message(server_type::pong, pong{}, timestamp_ms,
                             std::nullopt);
}

client_message make_ping(double epoch_seconds) {
  client_message x;
  x.type = client_type::ping;
  x.type_name = "PING";
  x.body = ping{epoch_seconds};
  return x;
}

client_message make_update_progress(shoot_progress p) {
  client_message x;
  x.type = client_type::update_progress;
  x.type_name = "UPDATE_PROGRESS";
  x.body = std::move(p);
  return x;
}

// -- equality -----------------------------------------------------------------

namespace {

auto fields(const shoot_progress& x) {
  return std::tie(x.shoot_id, x.status, x.processed_count, x.total_count,
                  x.current_image, x.eta, x.provider, x.error_message);
}
auto fields(const credit_update& x) {
  return std::tie(x.user_id, x.new_balance, x.change, x.reason);
}
auto fields(const device_connection& x) {
  return std::tie(x.device_id, x.platform, x.device_name, x.connected_at,
                  x.timestamp);
}
auto fields(const admin_session_update& x) {
  return std::tie(x.session_id, x.user_id, x.user_email, x.action,
                  x.message_count);
}
auto fields(const provider_status& x) {
  return std::tie(x.provider, x.health_score, x.status, x.active_requests,
                  x.requests_today, x.cost_today, x.avg_latency, x.success_rate,
                  x.error_rate, x.rate_limit_hits, x.rate_limit_proximity,
                  x.recent_errors, x.last_error, x.last_error_time,
                  x.request_history, x.cost_history, x.error_history,
                  x.uptime_percentage, x.last_downtime);
}
auto fields(const server_message& x) {
  return std::tie(x.type, x.type_name, x.body, x.timestamp, x.device_id,
                  x.user_id, x.seq);
}
auto fields(const client_message& x) {
  return std::tie(x.type, x.type_name, x.body, x.has_payload, x.id);
}
auto fields(const welcome& x) {
  return std::tie(x.epoch, x.seq, x.recovered, x.device_id, x.expires_at, x.devices);
}

} // namespace

bool operator==(const shoot_progress& x, const shoot_progress& y) {
  return fields(x) == fields(y);
}
bool operator==(const credit_update& x, const credit_update& y) {
  return fields(x) == fields(y);
}
bool operator==(const prompt_change& x, const prompt_change& y) {
  return x.prompt_id == y.prompt_id && x.action == y.action;
}
bool operator==(const device_connection& x, const device_connection& y) {
  return fields(x) == fields(y);
}
bool operator==(const admin_session_update& x, const admin_session_update& y) {
  return fields(x) == fields(y);
}
bool operator==(const history_point& x, const history_point& y) {
  return x.timestamp == y.timestamp && x.value == y.value;
}
bool operator==(const provider_status& x, const provider_status& y) {
  return fields(x) == fields(y);
}
bool operator==(const provider_health& x, const provider_health& y) {
  return x.providers == y.providers && x.timestamp == y.timestamp;
}
bool operator==(const ping& x, const ping& y) {
  return x.timestamp == y.timestamp;
}
bool operator==(const user_state& x, const user_state& y) {
  return std::tie(x.user_id, x.seq, x.credits, x.shoots, x.devices)
         == std::tie(y.user_id, y.seq, y.credits, y.shoots, y.devices);
}
bool operator==(const welcome& x, const welcome& y) {
  return fields(x) == fields(y);
}
bool operator==(const ack& x, const ack& y) {
  return x.id == y.id && x.seq == y.seq;
}
bool operator==(const nack& x, const nack& y) {
  return std::tie(x.id, x.code, x.error) == std::tie(y.id, y.code, y.error);
}
bool operator==(const refreshed& x, const refreshed& y) {
  return x.expires_at == y.expires_at;
}
bool operator==(const refresh& x, const refresh& y) {
  return x.token == y.token;
}
bool operator==(const unknown_data& x, const unknown_data& y) {
  return x.raw_json == y.raw_json;
}
bool operator==(const pong&, const pong&) {
  return true;
}
bool operator==(const batch& x, const batch& y) {
  return x.messages == y.messages;
}
bool operator==(const server_message& x, const server_message& y) {
  return fields(x) == fields(y);
}
bool operator==(const client_message& x, const client_message& y) {
  return fields(x) == fields(y);
}

} // namespace kullsync::msg

#pragma once

/// Wire types of the Kull sync protocol, v1 and v2 (see docs/PROTOCOL.md).
/// Plain structs with no dependency on CAF or Boost: the codec turns them into
/// JSON, `caf_types.hpp` makes them CAF message types.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kullsync::msg {

// -- enums --------------------------------------------------------------------

enum class shoot_status : uint8_t { queued, processing, completed, failed };
enum class prompt_action : uint8_t { created, updated, deleted, voted };
enum class admin_action : uint8_t { new_message, session_updated };
enum class health_status : uint8_t { healthy, degraded, unhealthy };
/// Why a v2 client message was refused (NACK): the server's codes, then the
/// client engine's own (never on the wire; read from a server's frame they
/// make it bad): `superseded`, a later update of the
/// same shoot replaced it before it was sent; `outbox_full`, the engine
/// holds `offline_queue_limit` unacknowledged messages already.
enum class nack_code : uint8_t {
  invalid, forbidden, rate_limited, too_large, unavailable, superseded, outbox_full
};
/// The codes a server sends (the contract's); a frame with another is bad.
inline bool is_wire_code(nack_code x) { return x <= nack_code::unavailable; }

/// Wire spelling of each enum value ("processing", "voted", ...).
std::string_view to_string(shoot_status x);
std::string_view to_string(prompt_action x);
std::string_view to_string(admin_action x);
std::string_view to_string(health_status x);
std::string_view to_string(nack_code x);

/// Parses a wire spelling; false if `str` is not a value of the protocol.
bool from_string(std::string_view str, shoot_status& x);
bool from_string(std::string_view str, prompt_action& x);
bool from_string(std::string_view str, admin_action& x);
bool from_string(std::string_view str, health_status& x);
bool from_string(std::string_view str, nack_code& x);

/// Ids that name a user, device, shoot or prompt: non-empty, at most
/// `max_id_bytes`, valid UTF-8, no control characters. Bytes from a query or
/// a header become JSON text on other users' sockets: an id that fails this
/// is refused where it enters (close 4002, HTTP 400, NACK invalid).
constexpr size_t max_id_bytes = 128;
bool valid_id(std::string_view id);

/// True for the states after which a shoot leaves the active list.
inline bool is_terminal(shoot_status x) {
  return x == shoot_status::completed || x == shoot_status::failed;
}

// -- payloads -----------------------------------------------------------------

/// SHOOT_PROGRESS data, also the UPDATE_PROGRESS payload.
struct shoot_progress {
  std::string shoot_id;
  shoot_status status = shoot_status::queued;
  int64_t processed_count = 0;
  int64_t total_count = 0;
  std::optional<std::string> current_image;
  std::optional<double> eta; // seconds remaining
  std::string provider;
  std::optional<std::string> error_message;

  /// processed/total in [0, 1]; 0 when total is 0. The wire's own `progress`
  /// field is ignored on purpose: senders disagree on its scale.
  double progress() const;
};

struct credit_update {
  std::string user_id;
  int64_t new_balance = 0;
  int64_t change = 0;
  std::string reason;
};

struct prompt_change {
  std::string prompt_id;
  prompt_action action = prompt_action::created;
};

/// DEVICE_CONNECTED / DEVICE_DISCONNECTED data. The deployed server sends only
/// {deviceId, timestamp}; the declared long form adds the other fields.
struct device_connection {
  std::string device_id;
  std::string platform;
  std::string device_name;
  std::optional<int64_t> connected_at; // epoch ms
  std::optional<int64_t> timestamp;    // epoch ms
};

struct admin_session_update {
  std::string session_id;
  std::optional<std::string> user_id;
  std::optional<std::string> user_email;
  admin_action action = admin_action::new_message;
  std::optional<int64_t> message_count;
};

struct history_point {
  int64_t timestamp = 0;
  double value = 0;
};

struct provider_status {
  std::string provider;
  double health_score = 0;
  health_status status = health_status::healthy;
  int64_t active_requests = 0;
  int64_t requests_today = 0;
  double cost_today = 0;
  double avg_latency = 0;
  double success_rate = 0;
  double error_rate = 0;
  int64_t rate_limit_hits = 0;
  double rate_limit_proximity = 0;
  int64_t recent_errors = 0;
  std::optional<std::string> last_error;
  std::optional<int64_t> last_error_time;
  std::vector<history_point> request_history;
  std::vector<history_point> cost_history;
  std::vector<history_point> error_history;
  double uptime_percentage = 0;
  std::optional<int64_t> last_downtime;
};

struct provider_health {
  std::vector<provider_status> providers;
  std::optional<int64_t> timestamp;
};

/// Client PING payload: epoch *seconds* as a float.
struct ping {
  std::optional<double> timestamp;
};

/// What the server remembers of one user: the body of GET /api/sync/state,
/// and v2's SNAPSHOT (as of stream position `seq`). `credits` is the last
/// CREDIT_UPDATE (its userId is the state's).
struct user_state {
  std::string user_id;               // "" in a SNAPSHOT
  std::optional<uint64_t> seq;       // v2: the stream position it is as of
  std::optional<credit_update> credits;
  std::vector<shoot_progress> shoots;     // active, by shootId
  std::vector<device_connection> devices; // connected now
};

// -- v2 control messages ------------------------------------------------------

/// WELCOME: the first frame of a v2 socket.
struct welcome {
  std::string epoch;
  uint64_t seq = 0;        // the stream's top
  bool recovered = false;  // the missed messages follow (else a SNAPSHOT)
  std::string device_id;   // this socket's device
  std::optional<int64_t> expires_at; // the token's expiry, epoch ms
  std::vector<device_connection> devices; // connected now, this one included
};

/// ACK: a client message is in the stream, at `seq`.
struct ack {
  std::string id;
  uint64_t seq = 0;
};

/// NACK: a client message was refused. `id` echoes the message's id: null
/// when it was not a string, cut to `max_message_id` characters when too long.
struct nack {
  std::optional<std::string> id;
  nack_code code = nack_code::invalid;
  std::string error;
};

/// REFRESHED: the socket's token was replaced.
struct refreshed {
  std::optional<int64_t> expires_at; // null: the new token does not expire
};

/// REFRESH payload (client): a new token for the same user.
struct refresh {
  std::string token;
};

/// Data of a message whose type this build does not know, kept verbatim.
struct unknown_data {
  std::string raw_json; // the `data` (or `payload`) value, "" when absent
};

// -- server -> client ---------------------------------------------------------

enum class server_type : uint8_t {
  shoot_progress,
  credit_update,
  prompt_change,
  device_connected,
  device_disconnected,
  admin_session_update,
  provider_health,
  pong,
  batch,
  welcome,   // v2
  snapshot,  // v2
  ack,       // v2
  nack,      // v2
  refreshed, // v2
  unknown,
};

std::string_view to_string(server_type x);
/// True for the types a v2 stream numbers (they carry `seq`).
bool is_numbered(server_type x);
server_type server_type_from(std::string_view wire);

struct server_message;

/// BATCH body: the inner envelopes, in order.
struct batch {
  std::vector<server_message> messages;
};

/// PONG has no data.
struct pong {};

using server_body
  = std::variant<shoot_progress, credit_update, prompt_change, device_connection,
                 admin_session_update, provider_health, pong, batch,
                 unknown_data, welcome, user_state, ack, nack, refreshed>;

/// One server frame: {"type","data","timestamp","deviceId","userId"?}, and
/// on a v2 socket `seq` for the numbered types.
struct server_message {
  server_type type = server_type::unknown;
  std::string type_name; // the wire string; meaningful for `unknown`
  server_body body;
  int64_t timestamp = 0;                // epoch ms, server clock
  std::optional<std::string> device_id; // "server" or the originating device
  std::optional<std::string> user_id;
  std::optional<uint64_t> seq;          // v2: the position in the user's stream
};

/// Whether `m` takes a position in its user's stream (v2): a numbered type,
/// or a type this build does not know, with its `seq`. The client's stream
/// link and its saved position count the same messages.
bool holds_position(const server_message& m);

// -- client -> server ---------------------------------------------------------

enum class client_type : uint8_t {
  ping,
  update_progress,
  subscribe,
  unsubscribe,
  refresh, // v2
  unknown
};

std::string_view to_string(client_type x);
client_type client_type_from(std::string_view wire);

using client_body = std::variant<ping, shoot_progress, unknown_data, refresh>;

/// The longest client message id (v2): 1 to 64 characters (Unicode code
/// points, not bytes).
constexpr size_t max_message_id = 64;

/// An id an app may give its own message: 1 to 64 characters of printable
/// UTF-8 (the server takes control characters too; an app has no use for them).
bool valid_message_id(std::string_view id);

/// How many characters (code points) the UTF-8 text `s` holds.
size_t utf8_length(std::string_view s);
/// `s` cut to at most `n` characters, never inside one.
std::string_view utf8_prefix(std::string_view s, size_t n);

/// One client frame: {"type","payload"?}, on v2 with an optional "id".
/// SUBSCRIBE/UNSUBSCRIBE/unknown carry their payload as unknown_data.
struct client_message {
  client_type type = client_type::unknown;
  std::string type_name;
  client_body body;
  bool has_payload = true;
  std::optional<std::string> id; // v2: unique per device, 1-64 characters
  /// The payload as received, when decoded with keep_raw_payload; not part
  /// of equality.
  std::string raw_payload;
};

// -- construction helpers -----------------------------------------------------

server_message make_server_message(server_type type, server_body body,
                                   int64_t timestamp_ms,
                                   std::optional<std::string> device_id,
                                   std::optional<std::string> user_id = {});
server_message make_pong(int64_t timestamp_ms);
client_message make_ping(double epoch_seconds);
client_message make_update_progress(shoot_progress x);

// -- equality (used by tests, deduplication and CAF) --------------------------

bool operator==(const shoot_progress&, const shoot_progress&);
bool operator==(const credit_update&, const credit_update&);
bool operator==(const prompt_change&, const prompt_change&);
bool operator==(const device_connection&, const device_connection&);
bool operator==(const admin_session_update&, const admin_session_update&);
bool operator==(const history_point&, const history_point&);
bool operator==(const provider_status&, const provider_status&);
bool operator==(const provider_health&, const provider_health&);
bool operator==(const ping&, const ping&);
bool operator==(const user_state&, const user_state&);
bool operator==(const welcome&, const welcome&);
bool operator==(const ack&, const ack&);
bool operator==(const nack&, const nack&);
bool operator==(const refreshed&, const refreshed&);
bool operator==(const refresh&, const refresh&);
bool operator==(const unknown_data&, const unknown_data&);
bool operator==(const pong&, const pong&);
bool operator==(const batch&, const batch&);
bool operator==(const server_message&, const server_message&);
bool operator==(const client_message&, const client_message&);

} // namespace kullsync::msg

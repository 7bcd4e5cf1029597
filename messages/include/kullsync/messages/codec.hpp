#pragma once

/// JSON codec for the wire protocol (v1, and v2's additions). Decoding never throws and never
/// crashes: every malformed frame comes back as a decode_error naming what is
/// wrong and where (a field path such as `data.providers[2].status`).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "kullsync/messages/types.hpp"

namespace kullsync::msg {

enum class decode_errc : uint8_t {
  too_large,     // frame exceeds decode_limits::max_frame_bytes
  too_deep,      // nesting exceeds decode_limits::max_depth
  not_json,      // syntax error
  not_object,    // the frame (or a field that must be one) is not an object
  missing_field, // a required field is absent or null
  wrong_type,    // a field has the wrong JSON type
  bad_enum,      // a string is not one of the protocol's values
  out_of_range,  // a number does not fit the declared integer type
};

std::string_view to_string(decode_errc x);

struct decode_error {
  decode_errc code = decode_errc::not_json;
  std::string path;   // "" for the frame itself, else e.g. "data.status"
  std::string detail; // human-readable, includes the path
};

struct decode_limits {
  size_t max_frame_bytes = 1 << 20;
  size_t max_depth = 32;
  /// decode_client also keeps the payload's JSON text in
  /// client_message::raw_payload, so a relay can forward it verbatim.
  bool keep_raw_payload = false;
  /// decode_client reads `id` (v2). Off for a v1 socket: the deployed
  /// server ignores keys it does not know, an `id` of any shape included.
  bool read_ids = true;
};

/// Either a value or the reason there is none.
template <class T>
class decode_result {
public:
  decode_result(T x) : v_(std::move(x)) {}
  decode_result(decode_error e) : v_(std::move(e)) {}
  explicit operator bool() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const decode_error& error() const { return std::get<1>(v_); }

private:
  std::variant<T, decode_error> v_;
};

/// Decodes one server -> client frame (a client's input).
decode_result<server_message> decode_server(std::string_view text,
                                            const decode_limits& lim = {});

/// The same into `out`, for a caller that keeps messages in a container (no
/// move of the decoded message): nothing on success, else the reason, with
/// `out` then unspecified.
std::optional<decode_error> decode_server_into(std::string_view text,
                                               server_message& out,
                                               const decode_limits& lim = {});

/// Decodes one client -> server frame (a server's input).
decode_result<client_message> decode_client(std::string_view text,
                                            const decode_limits& lim = {});

/// A client frame's "id" as a NACK echoes it: the id when it is a string
/// (cut to max_message_id characters), null when it is any other value.
struct echoed_id {
  std::optional<std::string> id;
};

/// The v2 id of a client frame that did not decode, if the frame is a JSON
/// object with an "id" (so that the refusal can name it in a NACK: a
/// message with an id is never dropped without an answer).
std::optional<echoed_id> client_frame_id(std::string_view text,
                                         const decode_limits& lim = {});

/// The "seq" of a server frame that did not decode, if the frame is a JSON
/// object with a position there: a v2 client passes it as read (counted as
/// a bad frame) rather than see a gap it would resume into again and again.
std::optional<uint64_t> server_frame_seq(std::string_view text,
                                         const decode_limits& lim = {});

/// Encodes in exactly the v1 shapes: `data` server->client, `payload`
/// client->server, PONG as {"type","timestamp"}, BATCH as
/// {"type","messages","timestamp"}.
std::string encode(const server_message& x);
std::string encode(const client_message& x);

/// Encodes a server envelope around an already serialised `data` object, so a
/// relay can forward a payload verbatim (extra fields included) and a
/// broadcast is serialised once.
std::string encode_envelope(std::string_view type, std::string_view data_json,
                            int64_t timestamp_ms, std::string_view device_id,
                            std::string_view user_id = {},
                            std::optional<uint64_t> seq = {});

/// `s` as a JSON string (quoted, escaped), for text built by hand.
std::string json_string(std::string_view s);

/// A single payload as its JSON object, and back (used by the HTTP triggers and
/// CAF's inspectors).
template <class T>
std::string to_json(const T& x);
template <class T>
decode_result<T> from_json(std::string_view text, const decode_limits& lim = {});

} // namespace kullsync::msg

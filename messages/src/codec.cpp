// The codec's public API (codec.hpp, json_value.hpp) over the reader and
// the writer.
#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/json_value.hpp"

#include "json_writer.hpp"
#include "kullsync/messages/keys.hpp"
#include "progress_reader.hpp"
#include "reader.hpp"
#include "writer.hpp"

namespace kullsync::msg {

using detail::json_writer;

decode_result<server_message> decode_server(std::string_view text,
                                            const decode_limits& lim) {
  server_message m;
  if (auto err = decode_server_into(text, m, lim))
    return std::move(*err);
  return m;
}

std::optional<decode_error> decode_server_into(std::string_view text,
                                               server_message& out,
                                               const decode_limits& lim) {
  // Progress frames are most of what a client reads: a plain one is read in
  // one pass; anything else, or anything unusual, takes the general path.
  if (text.size() <= lim.max_frame_bytes
      && detail::read_progress_frame(text, lim.max_depth, out))
    return std::nullopt;
  auto r = detail::decode_server_general(text, lim);
  if (!r)
    return r.error();
  out = std::move(*r);
  return std::nullopt;
}

decode_result<server_message> detail::decode_server_general(
  std::string_view text, const decode_limits& lim) {
  return read_text<server_message>(text, lim);
}

decode_result<client_message> decode_client(std::string_view text,
                                            const decode_limits& lim) {
  return detail::read_text<client_message>(text, lim);
}

std::string encode(const server_message& x) {
  return detail::write_text(x);
}

std::string encode(const client_message& x) {
  return detail::write_text(x);
}

std::string encode_envelope(std::string_view type, std::string_view data_json,
                            int64_t timestamp_ms, std::string_view device_id,
                            std::string_view user_id, std::optional<uint64_t> seq) {
  std::string out;
  // The envelope's keys and numbers, and room for a `seq` appended later
  // (a stream's v2 frame is its v1 text with the position appended).
  out.reserve(data_json.size() + type.size() + device_id.size()
              + user_id.size() + 96);
  json_writer w{out};
  w.begin_object();
  w.field(keys::type, type);
  w.key(keys::data);
  w.raw(data_json);
  w.field(keys::timestamp, timestamp_ms);
  w.field(keys::device_id, device_id);
  if (!user_id.empty())
    w.field(keys::user_id, user_id);
  w.optional_field(keys::seq, seq);
  w.end_object();
  return out;
}

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  json_writer w{out};
  w.value(s);
  return out;
}

template <class T>
std::string to_json(const T& x) {
  return detail::write_text(x);
}

std::optional<echoed_id> client_frame_id(std::string_view text,
                                         const decode_limits& lim) {
  return detail::read_client_id(text, lim);
}

std::optional<uint64_t> server_frame_seq(std::string_view text, const decode_limits& lim) {
  return detail::read_server_seq(text, lim);
}

template <class T>
decode_result<T> from_json(std::string_view text, const decode_limits& lim) {
  return detail::read_text<T>(text, lim);
}

template <class T>
decode_result<T> from_json_value(const boost::json::value& v) {
  return detail::read_value<T>(v);
}

#define KULLSYNC_INSTANTIATE(T)                                                \
  template std::string to_json<T>(const T&);                                   \
  template decode_result<T> from_json<T>(std::string_view,                     \
                                         const decode_limits&);                \
  template decode_result<T> from_json_value<T>(const boost::json::value&);

KULLSYNC_INSTANTIATE(shoot_progress)
KULLSYNC_INSTANTIATE(credit_update)
KULLSYNC_INSTANTIATE(prompt_change)
KULLSYNC_INSTANTIATE(device_connection)
KULLSYNC_INSTANTIATE(admin_session_update)
KULLSYNC_INSTANTIATE(provider_health)
KULLSYNC_INSTANTIATE(ping)
KULLSYNC_INSTANTIATE(user_state)
KULLSYNC_INSTANTIATE(welcome)
KULLSYNC_INSTANTIATE(server_message)
KULLSYNC_INSTANTIATE(client_message)

} // namespace kullsync::msg

// Reading the wire protocol: JSON text or a parsed value into wire types,
// with a precise error for anything that does not fit.
#include "reader.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <new>

#include "kullsync/messages/keys.hpp"
#include "payload_reader.hpp"
#include "read_support.hpp"

namespace json = boost::json;

namespace kullsync::msg {

std::string_view to_string(decode_errc x) {
  switch (x) {
    case decode_errc::too_large: return "too_large";
    case decode_errc::too_deep: return "too_deep";
    case decode_errc::not_json: return "not_json";
    case decode_errc::not_object: return "not_object";
    case decode_errc::missing_field: return "missing_field";
    case decode_errc::wrong_type: return "wrong_type";
    case decode_errc::bad_enum: return "bad_enum";
    case decode_errc::out_of_range: return "out_of_range";
  }
  return "unknown";
}

namespace {

using namespace detail::read;
using namespace detail::payload;

/// A "seq" that is a position (a whole number from 1), else none.
std::optional<uint64_t> lenient_seq(const json::value* v) {
  if (v && v->is_uint64() && v->get_uint64() > 0)
    return v->get_uint64();
  if (v && v->is_int64() && v->get_int64() > 0)
    return static_cast<uint64_t>(v->get_int64());
  return std::nullopt;
}

// -- envelopes ----------------------------------------------------------------

server_message read_server(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  server_message x;
  x.type_name = r.str(keys::type);
  x.type = server_type_from(x.type_name);
  x.device_id = r.opt(keys::device_id, as_string);
  x.user_id = r.opt(keys::user_id, as_string);
  if (x.type == server_type::unknown) {
    // Tolerated whatever its shape: only its type matters to the counters,
    // and its position, when it has one, to the stream.
    x.timestamp = r.opt(keys::timestamp, as_int).value_or(0);
    x.seq = lenient_seq(r.find(keys::seq));
    auto p = r.at(keys::data);
    x.body = read_unknown(r.find(keys::data), &p);
    return x;
  }
  x.timestamp = r.int_(keys::timestamp);
  x.seq = r.opt(keys::seq, as_seq);
  auto data = [&](auto reader) {
    auto p = r.at(keys::data);
    return reader(r.required(keys::data), &p);
  };
  switch (x.type) {
    case server_type::shoot_progress:
      x.body = data(read_shoot_progress);
      break;
    case server_type::credit_update:
      x.body = data(read_credit_update);
      break;
    case server_type::prompt_change:
      x.body = data(read_prompt_change);
      break;
    case server_type::device_connected:
    case server_type::device_disconnected:
      x.body = data(read_device_connection);
      break;
    case server_type::admin_session_update:
      x.body = data(read_admin_session_update);
      break;
    case server_type::provider_health:
      x.body = data(read_provider_health);
      break;
    case server_type::pong:
      x.body = pong{};
      break;
    case server_type::batch:
      x.body = batch{r.req(keys::messages, [](const json::value& a,
                                          const path_node* p) {
        return read_array(a, p, read_server);
      })};
      break;
    case server_type::welcome:
      x.body = data(read_welcome);
      break;
    case server_type::snapshot:
      x.body = data(read_user_state);
      break;
    case server_type::ack:
      x.body = data(read_ack);
      break;
    case server_type::nack:
      x.body = data(read_nack);
      break;
    case server_type::refreshed:
      x.body = data(read_refreshed);
      break;
    case server_type::unknown:
      break;
  }
  return x;
}

client_message read_client(const json::value& v, const path_node* at,
                           bool keep_raw, bool read_ids) {
  object_reader r{v, at};
  client_message x;
  x.type_name = r.str(keys::type);
  x.type = client_type_from(x.type_name);
  if (read_ids) {
    x.id = r.opt(keys::id, as_message_id);
    if (r.is_null(keys::id)) // present: it must be an id, not nothing
      fail(decode_errc::wrong_type, nullptr, "an id is a string of 1 to "
                                               + std::to_string(max_message_id) + " characters");
  }
  auto* payload = r.find(keys::payload);
  x.has_payload = payload != nullptr;
  auto p = r.at(keys::payload);
  switch (x.type) {
    case client_type::refresh:
      x.body = payload == nullptr ? refresh{} : read_refresh(*payload, &p);
      break;
    case client_type::ping:
      x.body = payload == nullptr ? ping{} : read_ping(*payload, &p);
      break;
    case client_type::update_progress:
      x.body = read_shoot_progress(r.required(keys::payload), &p);
      break;
    default:
      x.body = read_unknown(payload, &p);
  }
  if (keep_raw && payload != nullptr && x.type != client_type::ping) {
    require_finite(*payload, &p);
    x.raw_payload = detail::relay_text(*payload, x);
  }
  return x;
}

/// Parses `text` within the limits and hands the root to `read`.
template <class T, class F>
decode_result<T> decode_frame(std::string_view text, const decode_limits& lim,
                              F read) {
  try {
    if (text.size() > lim.max_frame_bytes)
      fail(decode_errc::too_large, nullptr,
           "frame of " + std::to_string(text.size()) + " bytes exceeds "
             + std::to_string(lim.max_frame_bytes));
    json::parse_options opts;
    opts.max_depth = lim.max_depth;
    // Small frames parse into a stack buffer, larger ones into one arena.
    unsigned char buf[4096];
    json::monotonic_resource mr{buf, sizeof(buf)};
    boost::system::error_code ec;
    auto root = json::parse(json::string_view{text.data(), text.size()}, ec,
                            &mr, opts);
    if (ec) {
      if (ec == json::error::too_deep)
        fail(decode_errc::too_deep,
             nullptr, "nesting deeper than " + std::to_string(lim.max_depth));
      fail(decode_errc::not_json, nullptr, "invalid JSON: " + ec.message());
    }
    if (!root.is_object())
      fail(decode_errc::not_object, nullptr,
           "frame must be a JSON object, got "
             + std::string{kind_name(root.kind())});
    return read(root, nullptr);
  } catch (failure& f) {
    return std::move(f.err);
  } catch (const std::bad_alloc&) {
    return decode_error{decode_errc::too_large, {}, "out of memory"};
  } catch (const std::exception& e) {
    return decode_error{decode_errc::not_json, {}, e.what()};
  }
}

template <class T>
T read_payload(const json::value& v, const path_node* at);
template <>
shoot_progress read_payload(const json::value& v, const path_node* at) {
  return read_shoot_progress(v, at);
}
template <>
credit_update read_payload(const json::value& v, const path_node* at) {
  return read_credit_update(v, at);
}
template <>
prompt_change read_payload(const json::value& v, const path_node* at) {
  return read_prompt_change(v, at);
}
template <>
device_connection read_payload(const json::value& v, const path_node* at) {
  return read_device_connection(v, at);
}
template <>
admin_session_update read_payload(const json::value& v, const path_node* at) {
  return read_admin_session_update(v, at);
}
template <>
provider_health read_payload(const json::value& v, const path_node* at) {
  return read_provider_health(v, at);
}
template <>
welcome read_payload(const json::value& v, const path_node* at) {
  return read_welcome(v, at);
}
template <>
user_state read_payload(const json::value& v, const path_node* at) {
  return read_user_state(v, at);
}
template <>
ping read_payload(const json::value& v, const path_node* at) {
  return read_ping(v, at);
}
template <>
server_message read_payload(const json::value& v, const path_node* at) {
  return read_server(v, at);
}
template <>
client_message read_payload(const json::value& v, const path_node* at) {
  return read_client(v, at, false, true);
}

} // namespace

namespace detail {



template <class T>
decode_result<T> read_text(std::string_view text, const decode_limits& lim) {
  return decode_frame<T>(text, lim, read_payload<T>);
}

template <>
decode_result<client_message> read_text(std::string_view text,
                                        const decode_limits& lim) {
  return decode_frame<client_message>(
    text, lim, [keep = lim.keep_raw_payload, ids = lim.read_ids](const json::value& v,
                                                                 const path_node* at) {
      return read_client(v, at, keep, ids);
    });
}

namespace {

bool hex4(std::string_view s, size_t at, unsigned& out) {
  if (at + 4 > s.size())
    return false;
  auto* p = s.data() + at;
  auto r = std::from_chars(p, p + 4, out, 16);
  return r.ec == std::errc{} && r.ptr == p + 4;
}

/// `text` with each escaped surrogate that is not half of a pair made
/// U+FFFD (same length). JSON's grammar allows a lone one ("\ud800": what
/// JavaScript's JSON.stringify writes for half an emoji), which Boost.JSON
/// refuses; only to find such a frame's id.
std::string without_lone_surrogates(std::string_view text) {
  std::string out{text};
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] != '\\')
      continue;
    unsigned u = 0;
    if (out[i + 1] != 'u' || !hex4(out, i + 2, u)) {
      ++i; // another escape: skip its character
      continue;
    }
    unsigned low = 0;
    bool pair = u >= 0xD800 && u <= 0xDBFF && i + 7 < out.size() && out[i + 6] == '\\'
                && out[i + 7] == 'u' && hex4(out, i + 8, low) && low >= 0xDC00 && low <= 0xDFFF;
    if (pair) {
      i += 11;
    } else {
      if (u >= 0xD800 && u <= 0xDFFF)
        out.replace(i + 2, 4, "FFFD");
      i += 5;
    }
  }
  return out;
}

} // namespace

std::optional<echoed_id> read_client_id(std::string_view text, const decode_limits& lim) {
  auto r = read_client_id_strict(text, lim);
  if (r)
    return r;
  // A frame refused for what JSON allows (nesting past the limit, a lone
  // surrogate escape) still names its id: its refusal must reach it.
  decode_limits deep = lim;
  deep.max_depth = std::max<size_t>(lim.max_depth, text.size());
  return read_client_id_strict(without_lone_surrogates(text), deep);
}

std::optional<echoed_id> read_client_id_strict(std::string_view text,
                                               const decode_limits& lim) {
  auto r = decode_frame<std::optional<echoed_id>>(
    text, lim, [](const json::value& v, const path_node*) -> std::optional<echoed_id> {
      auto* obj = v.if_object();
      auto* id = obj ? obj->if_contains(keys::id) : nullptr;
      if (!id)
        return std::nullopt;
      if (!id->is_string())
        return echoed_id{};
      auto& s = id->get_string();
      return echoed_id{std::string{utf8_prefix({s.data(), s.size()}, max_message_id)}};
    });
  if (!r)
    return std::nullopt;
  return std::move(*r);
}

std::optional<uint64_t> read_server_seq(std::string_view text, const decode_limits& lim) {
  auto r = decode_frame<std::optional<uint64_t>>(
    text, lim, [](const json::value& v, const path_node*) -> std::optional<uint64_t> {
      return lenient_seq(v.as_object().if_contains(keys::seq));
    });
  if (!r)
    return std::nullopt;
  return *r;
}

template <class T>
decode_result<T> read_value(const json::value& v) {
  try {
    return read_payload<T>(v, nullptr);
  } catch (failure& f) {
    return std::move(f.err);
  }
}

#define KULLSYNC_INSTANTIATE(T)                                                \
  template decode_result<T> read_text<T>(std::string_view, const decode_limits&); \
  template decode_result<T> read_value<T>(const json::value&);

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
template decode_result<client_message> read_value<client_message>(const json::value&);

#undef KULLSYNC_INSTANTIATE

} // namespace detail

} // namespace kullsync::msg

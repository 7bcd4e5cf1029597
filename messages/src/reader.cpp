// Reading the wire protocol: JSON text or a parsed value into wire types,
// with a precise error for anything that does not fit.
#include "reader.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <limits>
#include <new>

#include "kullsync/messages/keys.hpp"
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

// -- payload readers ----------------------------------------------------------

shoot_progress read_shoot_progress(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  shoot_progress x;
  x.shoot_id = r.str(keys::shoot_id);
  x.status = r.enum_<shoot_status>(keys::status,
                                   "queued|processing|completed|failed");
  x.processed_count = r.int_(keys::processed_count);
  x.total_count = r.int_(keys::total_count);
  x.current_image = r.opt(keys::current_image, as_string);
  x.eta = r.opt(keys::eta, as_number);
  // The legacy HTTP trigger validates only userId and shootId, so a deployed
  // sender may omit the provider.
  x.provider = r.str_or_empty(keys::provider);
  x.error_message = r.opt(keys::error_message, as_string);
  // `progress` (0..1) is tolerated and ignored: progress() derives it.
  return x;
}

credit_update read_credit_update(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  credit_update x;
  x.user_id = r.str(keys::user_id);
  x.new_balance = r.int_(keys::new_balance);
  x.change = r.int_(keys::change);
  x.reason = r.str_or_empty(keys::reason);
  return x;
}

prompt_change read_prompt_change(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  prompt_change x;
  x.prompt_id = r.str(keys::prompt_id);
  x.action = r.enum_<prompt_action>(keys::action, "created|updated|deleted|voted");
  return x;
}

device_connection read_device_connection(const json::value& v,
                                         const path_node* at) {
  object_reader r{v, at};
  device_connection x;
  x.device_id = r.str(keys::device_id);
  x.platform = r.str_or_empty(keys::platform);
  x.device_name = r.str_or_empty(keys::device_name);
  x.connected_at = r.opt(keys::connected_at, as_int);
  x.timestamp = r.opt(keys::timestamp, as_int);
  return x;
}

admin_session_update read_admin_session_update(const json::value& v,
                                               const path_node* at) {
  object_reader r{v, at};
  admin_session_update x;
  x.session_id = r.str(keys::session_id);
  x.user_id = r.opt(keys::user_id, as_string);
  x.user_email = r.opt(keys::user_email, as_string);
  x.action = r.enum_<admin_action>(keys::action, "new_message|session_updated");
  x.message_count = r.opt(keys::message_count, as_int);
  return x;
}

template <class F>
auto read_array(const json::value& v, const path_node* at, F read_item) {
  if (!v.is_array())
    wrong_type(v, at, "array");
  std::vector<decltype(read_item(v, at))> xs;
  auto& arr = v.get_array();
  xs.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    path_node p{at, {}, i, true};
    xs.push_back(read_item(arr[i], &p));
  }
  return xs;
}

history_point read_history_point(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  history_point x;
  x.timestamp = r.int_(keys::timestamp);
  x.value = r.req(keys::value, as_number);
  return x;
}

std::vector<history_point> history_or_empty(const object_reader& r,
                                            std::string_view key) {
  return r
    .opt(key,
         [](const json::value& v, const path_node* at) {
           return read_array(v, at, read_history_point);
         })
    .value_or(std::vector<history_point>{});
}

provider_status read_provider_status(const json::value& v,
                                     const path_node* at) {
  object_reader r{v, at};
  provider_status x;
  x.provider = r.str(keys::provider);
  x.health_score = r.num_or(keys::health_score, 0);
  x.status = r.enum_<health_status>(keys::status, "healthy|degraded|unhealthy");
  x.active_requests = r.int_or(keys::active_requests, 0);
  x.requests_today = r.int_or(keys::requests_today, 0);
  x.cost_today = r.num_or(keys::cost_today, 0);
  x.avg_latency = r.num_or(keys::avg_latency, 0);
  x.success_rate = r.num_or(keys::success_rate, 0);
  x.error_rate = r.num_or(keys::error_rate, 0);
  x.rate_limit_hits = r.int_or(keys::rate_limit_hits, 0);
  x.rate_limit_proximity = r.num_or(keys::rate_limit_proximity, 0);
  x.recent_errors = r.int_or(keys::recent_errors, 0);
  x.last_error = r.opt(keys::last_error, as_string);
  x.last_error_time = r.opt(keys::last_error_time, as_int);
  x.request_history = history_or_empty(r, keys::request_history);
  x.cost_history = history_or_empty(r, keys::cost_history);
  x.error_history = history_or_empty(r, keys::error_history);
  x.uptime_percentage = r.num_or(keys::uptime_percentage, 0);
  x.last_downtime = r.opt(keys::last_downtime, as_int);
  return x;
}

provider_health read_provider_health(const json::value& v,
                                     const path_node* at) {
  object_reader r{v, at};
  provider_health x;
  x.providers = r.req(keys::providers, [](const json::value& a,
                                      const path_node* p) {
    return read_array(a, p, read_provider_status);
  });
  x.timestamp = r.opt(keys::timestamp, as_int);
  return x;
}

/// The credits of a state: a CREDIT_UPDATE's data without its userId.
credit_update read_credits(const json::value& v, const path_node* at,
                           const std::string& user) {
  object_reader r{v, at};
  credit_update x;
  x.user_id = user;
  x.new_balance = r.int_(keys::new_balance);
  x.change = r.int_or(keys::change, 0);
  x.reason = r.str_or_empty(keys::reason);
  return x;
}

user_state read_user_state(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  user_state x;
  x.user_id = r.str_or_empty(keys::user_id);
  x.seq = r.opt(keys::seq, as_seq);
  x.credits = r.opt(keys::credits, [&](const json::value& c, const path_node* p) {
    return read_credits(c, p, x.user_id);
  });
  auto list = [&](std::string_view key, auto read_item) {
    return r.opt(key, [&](const json::value& a, const path_node* p) {
               return read_array(a, p, read_item);
             })
      .value_or(decltype(read_array(v, at, read_item)){});
  };
  x.shoots = list(keys::shoots, read_shoot_progress);
  x.devices = list(keys::devices, read_device_connection);
  return x;
}

std::vector<device_connection> read_devices(const object_reader& r) {
  return r
    .opt(keys::devices,
         [](const json::value& a, const path_node* p) {
           return read_array(a, p, read_device_connection);
         })
    .value_or(std::vector<device_connection>{});
}

welcome read_welcome(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  welcome x;
  x.epoch = r.str(keys::epoch);
  x.seq = r.req(keys::seq, as_seq);
  x.recovered = r.req(keys::recovered, as_bool);
  x.device_id = r.str_or_empty(keys::device_id);
  x.expires_at = r.opt(keys::expires_at, as_int);
  x.devices = read_devices(r);
  return x;
}

ack read_ack(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  return ack{r.str(keys::id), r.req(keys::seq, as_seq)};
}

nack read_nack(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  nack x;
  x.id = r.str(keys::id);
  x.code = r.enum_<nack_code>(keys::code,
                              "invalid|forbidden|rate_limited|too_large|unavailable");
  x.error = r.str_or_empty(keys::error);
  return x;
}

refreshed read_refreshed(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  return refreshed{r.opt(keys::expires_at, as_int)};
}

refresh read_refresh(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  return refresh{r.str(keys::token)};
}

ping read_ping(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  return ping{r.opt(keys::timestamp, as_number)};
}

/// Boost.JSON turns 1e400 into infinity and would serialise it as the
/// invalid token `Infinity`; such a value cannot be kept or relayed.
void require_finite(const json::value& v, const path_node* at) {
  switch (v.kind()) {
    case json::kind::double_:
      if (!std::isfinite(v.get_double()))
        fail(decode_errc::out_of_range, at, "number is not finite");
      break;
    case json::kind::array: {
      auto& arr = v.get_array();
      for (size_t i = 0; i < arr.size(); ++i) {
        path_node p{at, {}, i, true};
        require_finite(arr[i], &p);
      }
      break;
    }
    case json::kind::object:
      for (auto& kv : v.get_object()) {
        path_node p{at, {kv.key().data(), kv.key().size()}, 0, false};
        require_finite(kv.value(), &p);
      }
      break;
    default:
      break;
  }
}

unknown_data read_unknown(const json::value* v, const path_node* at) {
  if (v == nullptr)
    return unknown_data{};
  require_finite(*v, at);
  return unknown_data{json::serialize(*v)};
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
    // Tolerated whatever its shape: only its type matters to the counters.
    x.timestamp = r.opt(keys::timestamp, as_int).value_or(0);
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
                           bool keep_raw) {
  object_reader r{v, at};
  client_message x;
  x.type_name = r.str(keys::type);
  x.type = client_type_from(x.type_name);
  x.id = r.opt(keys::id, as_message_id);
  auto* payload = r.find(keys::payload);
  x.has_payload = payload != nullptr;
  auto p = r.at(keys::payload);
  switch (x.type) {
    case client_type::refresh:
      x.body = read_refresh(r.required(keys::payload), &p);
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
  if (keep_raw && payload != nullptr) {
    require_finite(*payload, &p);
    x.raw_payload = json::serialize(*payload);
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
  return read_client(v, at, false);
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
    text, lim, [keep = lim.keep_raw_payload](const json::value& v,
                                             const path_node* at) {
      return read_client(v, at, keep);
    });
}

std::optional<std::string> read_client_id(std::string_view text,
                                          const decode_limits& lim) {
  auto r = decode_frame<std::string>(text, lim, [](const json::value& v,
                                                   const path_node* at) {
    object_reader r{v, at};
    return r.opt(keys::id, as_message_id).value_or(std::string{});
  });
  if (!r || r->empty())
    return std::nullopt;
  return std::move(*r);
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

// Writing the wire protocol: wire types into JSON text, in exactly the
// deployed shapes.
#include "writer.hpp"

#include <type_traits>
#include <variant>

#include "json_writer.hpp"
#include "kullsync/messages/keys.hpp"

namespace kullsync::msg {

namespace {

using detail::json_writer;

void write(json_writer& w, const shoot_progress& x) {
  w.begin_object();
  w.field(keys::shoot_id, x.shoot_id);
  w.field(keys::status, to_string(x.status));
  w.field(keys::processed_count, x.processed_count);
  w.field(keys::total_count, x.total_count);
  w.optional_field(keys::current_image, x.current_image);
  w.optional_field(keys::eta, x.eta);
  w.field(keys::provider, x.provider);
  w.optional_field(keys::error_message, x.error_message);
  w.end_object();
}

void write(json_writer& w, const credit_update& x) {
  w.begin_object();
  w.field(keys::user_id, x.user_id);
  w.field(keys::new_balance, x.new_balance);
  w.field(keys::change, x.change);
  w.field(keys::reason, x.reason);
  w.end_object();
}

void write(json_writer& w, const prompt_change& x) {
  w.begin_object();
  w.field(keys::prompt_id, x.prompt_id);
  w.field(keys::action, to_string(x.action));
  w.end_object();
}

void write(json_writer& w, const device_connection& x) {
  w.begin_object();
  w.field(keys::device_id, x.device_id);
  // The short shape the deployed server sends stays short.
  if (!x.platform.empty())
    w.field(keys::platform, x.platform);
  if (!x.device_name.empty())
    w.field(keys::device_name, x.device_name);
  w.optional_field(keys::connected_at, x.connected_at);
  w.optional_field(keys::timestamp, x.timestamp);
  w.end_object();
}

void write(json_writer& w, const admin_session_update& x) {
  w.begin_object();
  w.field(keys::session_id, x.session_id);
  w.optional_field(keys::user_id, x.user_id);
  w.optional_field(keys::user_email, x.user_email);
  w.field(keys::action, to_string(x.action));
  w.optional_field(keys::message_count, x.message_count);
  w.end_object();
}

void write(json_writer& w, const std::vector<history_point>& xs) {
  w.begin_array();
  for (auto& x : xs) {
    w.begin_object();
    w.field(keys::timestamp, x.timestamp);
    w.field(keys::value, x.value);
    w.end_object();
  }
  w.end_array();
}

void write(json_writer& w, const provider_status& x) {
  w.begin_object();
  w.field(keys::provider, x.provider);
  w.field(keys::health_score, x.health_score);
  w.field(keys::status, to_string(x.status));
  w.field(keys::active_requests, x.active_requests);
  w.field(keys::requests_today, x.requests_today);
  w.field(keys::cost_today, x.cost_today);
  w.field(keys::avg_latency, x.avg_latency);
  w.field(keys::success_rate, x.success_rate);
  w.field(keys::error_rate, x.error_rate);
  w.field(keys::rate_limit_hits, x.rate_limit_hits);
  w.field(keys::rate_limit_proximity, x.rate_limit_proximity);
  w.field(keys::recent_errors, x.recent_errors);
  w.key(keys::last_error);
  if (x.last_error)
    w.value(*x.last_error);
  else
    w.null();
  w.optional_field(keys::last_error_time, x.last_error_time);
  w.key(keys::request_history);
  write(w, x.request_history);
  w.key(keys::cost_history);
  write(w, x.cost_history);
  w.key(keys::error_history);
  write(w, x.error_history);
  w.field(keys::uptime_percentage, x.uptime_percentage);
  w.optional_field(keys::last_downtime, x.last_downtime);
  w.end_object();
}

void write(json_writer& w, const server_message& x);

/// `"key":[...]`, each item by its own write(); every overload it uses is
/// declared above.
template <class List>
void write_list(json_writer& w, std::string_view key, const List& xs) {
  w.key(key);
  w.begin_array();
  for (auto& x : xs)
    write(w, x);
  w.end_array();
}

void write(json_writer& w, const provider_health& x) {
  w.begin_object();
  write_list(w, keys::providers, x.providers);
  w.optional_field(keys::timestamp, x.timestamp);
  w.end_object();
}

void write(json_writer& w, const user_state& x) {
  w.begin_object();
  if (!x.user_id.empty())
    w.field(keys::user_id, x.user_id);
  w.optional_field(keys::seq, x.seq);
  w.key(keys::credits);
  if (x.credits) {
    w.begin_object();
    w.field(keys::new_balance, x.credits->new_balance);
    w.field(keys::change, x.credits->change);
    w.field(keys::reason, x.credits->reason);
    w.end_object();
  } else {
    w.null();
  }
  write_list(w, keys::shoots, x.shoots);
  write_list(w, keys::devices, x.devices);
  w.end_object();
}

void write(json_writer& w, const welcome& x) {
  w.begin_object();
  w.field(keys::epoch, x.epoch);
  w.field(keys::seq, x.seq);
  w.field(keys::recovered, x.recovered);
  w.field(keys::device_id, x.device_id);
  w.key(keys::expires_at);
  if (x.expires_at)
    w.value(*x.expires_at);
  else
    w.null();
  write_list(w, keys::devices, x.devices);
  w.end_object();
}

void write(json_writer& w, const ack& x) {
  w.begin_object();
  w.field(keys::id, x.id);
  w.field(keys::seq, x.seq);
  w.end_object();
}

void write(json_writer& w, const nack& x) {
  w.begin_object();
  if (x.id) {
    w.field(keys::id, *x.id);
  } else {
    w.key(keys::id);
    w.null();
  }
  w.field(keys::code, to_string(x.code));
  w.field(keys::error, x.error);
  w.end_object();
}

void write(json_writer& w, const refreshed& x) {
  w.begin_object();
  w.key(keys::expires_at);
  if (x.expires_at)
    w.value(*x.expires_at);
  else
    w.null();
  w.end_object();
}

void write(json_writer& w, const refresh& x) {
  w.begin_object();
  w.field(keys::token, x.token);
  w.end_object();
}

void write(json_writer& w, const ping& x) {
  w.begin_object();
  w.optional_field(keys::timestamp, x.timestamp);
  w.end_object();
}

void write(json_writer& w, const unknown_data& x) {
  w.raw(x.raw_json.empty() ? std::string_view{"null"} : x.raw_json);
}

void write_server_data(json_writer& w, const server_message& x) {
  std::visit(
    [&](const auto& body) {
      using T = std::decay_t<decltype(body)>;
      if constexpr (std::is_same_v<T, pong>) {
        // PONG carries no data.
      } else if constexpr (std::is_same_v<T, batch>) {
        write_list(w, keys::messages, body.messages);
      } else if constexpr (std::is_same_v<T, unknown_data>) {
        if (!body.raw_json.empty()) {
          w.key(keys::data);
          write(w, body);
        }
      } else {
        w.key(keys::data);
        write(w, body);
      }
    },
    x.body);
}

void write(json_writer& w, const server_message& x) {
  w.begin_object();
  w.field(keys::type, x.type == server_type::unknown ? std::string_view{x.type_name}
                                                 : to_string(x.type));
  write_server_data(w, x);
  w.field(keys::timestamp, x.timestamp);
  w.optional_field(keys::device_id, x.device_id);
  w.optional_field(keys::user_id, x.user_id);
  w.optional_field(keys::seq, x.seq);
  w.end_object();
}

void write(json_writer& w, const client_message& x) {
  w.begin_object();
  w.field(keys::type, x.type == client_type::unknown ? std::string_view{x.type_name}
                                                 : to_string(x.type));
  w.optional_field(keys::id, x.id);
  if (x.has_payload) {
    std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, unknown_data>) {
          if (body.raw_json.empty())
            return;
        }
        w.key(keys::payload);
        write(w, body);
      },
      x.body);
  }
  w.end_object();
}

template <class T>
std::string write_to_string(const T& x) {
  std::string out;
  out.reserve(256);
  json_writer w{out};
  write(w, x);
  return out;
}

} // namespace

namespace detail {

template <class T>
std::string write_text(const T& x) {
  return write_to_string(x);
}

template std::string write_text(const shoot_progress&);
template std::string write_text(const credit_update&);
template std::string write_text(const prompt_change&);
template std::string write_text(const device_connection&);
template std::string write_text(const admin_session_update&);
template std::string write_text(const provider_health&);
template std::string write_text(const ping&);
template std::string write_text(const user_state&);
template std::string write_text(const welcome&);
template std::string write_text(const server_message&);
template std::string write_text(const client_message&);

} // namespace detail

} // namespace kullsync::msg

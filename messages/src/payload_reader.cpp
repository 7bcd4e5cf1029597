// Reading each payload of the wire protocol into its wire type.
#include "payload_reader.hpp"

#include <boost/json/serialize.hpp>

#include <cmath>

#include "kullsync/messages/keys.hpp"

namespace kullsync::msg::detail::payload {

using namespace detail::read;

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
  x.id = r.opt(keys::id, as_string);
  x.code = r.enum_<nack_code>(keys::code,
                              "invalid|forbidden|rate_limited|too_large|unavailable");
  if (!is_wire_code(x.code)) // the client engine's own: never from a server
    fail(decode_errc::bad_enum, at,
         "'" + std::string{to_string(x.code)}
           + "' is not one of invalid|forbidden|rate_limited|too_large|unavailable");
  x.error = r.str_or_empty(keys::error);
  return x;
}

refreshed read_refreshed(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  return refreshed{r.opt(keys::expires_at, as_int)};
}

refresh read_refresh(const json::value& v, const path_node*) {
  // A REFRESH is answered REFRESHED or closed 4002 "when the new token is
  // invalid": one with no token (or not a string) is that, not a frame to
  // ignore, so it reads as an empty token, which no authenticator takes.
  refresh x;
  if (auto* o = v.if_object())
    if (auto* t = o->if_contains(keys::token); t && t->is_string())
      x.token.assign(t->get_string().data(), t->get_string().size());
  return x;
}

ping read_ping(const json::value& v, const path_node*) {
  // PING -> PONG whatever it carries: the server answers with its own time
  // and uses none of it, so an app that sends its timestamp as text (or a
  // payload of its own) still gets its PONG.
  ping p;
  if (auto* o = v.if_object())
    if (auto* t = o->if_contains(keys::timestamp); t && t->is_number()) {
      auto x = t->to_number<double>();
      if (std::isfinite(x))
        p.timestamp = x;
    }
  return p;
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

} // namespace kullsync::msg::detail::payload

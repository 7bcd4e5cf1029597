#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/json_value.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/json/monotonic_resource.hpp>

#include <cmath>
#include <limits>
#include <new>

#include "json_writer.hpp"
#include "progress_reader.hpp"

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

// -- error reporting ----------------------------------------------------------

/// A field path kept on the stack while descending; rendered only on error.
struct path_node {
  const path_node* parent = nullptr;
  std::string_view key;
  size_t index = 0;
  bool is_index = false;
};

void render(const path_node* p, std::string& out) {
  if (p == nullptr)
    return;
  render(p->parent, out);
  if (p->is_index) {
    out += '[';
    out += std::to_string(p->index);
    out += ']';
  } else if (!p->key.empty()) {
    if (!out.empty())
      out += '.';
    out += p->key;
  }
}

/// Thrown inside the decoder only; decode_* catch it and return the error.
struct failure {
  decode_error err;
};

[[noreturn]] void fail(decode_errc code, const path_node* at,
                       std::string_view what) {
  decode_error e;
  e.code = code;
  render(at, e.path);
  e.detail = e.path.empty() ? std::string{what}
                            : e.path + ": " + std::string{what};
  throw failure{std::move(e)};
}

std::string_view kind_name(json::kind k) {
  switch (k) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "bool";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "?";
}

[[noreturn]] void wrong_type(const json::value& v, const path_node* at,
                             std::string_view expected) {
  std::string what = "expected ";
  what += expected;
  what += ", got ";
  what += kind_name(v.kind());
  fail(decode_errc::wrong_type, at, what);
}

// -- scalar conversion --------------------------------------------------------

std::string as_string(const json::value& v, const path_node* at) {
  if (!v.is_string())
    wrong_type(v, at, "string");
  auto& s = v.get_string();
  return std::string{s.data(), s.size()};
}

int64_t as_int(const json::value& v, const path_node* at) {
  switch (v.kind()) {
    case json::kind::int64:
      return v.get_int64();
    case json::kind::uint64:
      if (v.get_uint64()
          > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(decode_errc::out_of_range, at, "integer out of range");
      return static_cast<int64_t>(v.get_uint64());
    case json::kind::double_: {
      // JavaScript senders produce 12.0 or 11.999999 for counts; accept any
      // finite float that fits and round it.
      auto d = v.get_double();
      if (!std::isfinite(d) || d >= 9.2233720368547758e18
          || d < -9.2233720368547758e18)
        fail(decode_errc::out_of_range, at, "number out of integer range");
      return std::llround(d);
    }
    default:
      wrong_type(v, at, "integer");
  }
}

double as_number(const json::value& v, const path_node* at) {
  switch (v.kind()) {
    case json::kind::int64: return static_cast<double>(v.get_int64());
    case json::kind::uint64: return static_cast<double>(v.get_uint64());
    case json::kind::double_:
      if (!std::isfinite(v.get_double()))
        fail(decode_errc::out_of_range, at, "number is not finite");
      return v.get_double();
    default: wrong_type(v, at, "number");
  }
}

template <class E>
E as_enum(const json::value& v, const path_node* at, std::string_view allowed) {
  if (!v.is_string())
    wrong_type(v, at, "string");
  auto& s = v.get_string();
  E x{};
  if (!from_string(std::string_view{s.data(), s.size()}, x)) {
    std::string what = "'";
    what.append(s.data(), std::min<size_t>(s.size(), 64));
    what += "' is not one of ";
    what += allowed;
    fail(decode_errc::bad_enum, at, what);
  }
  return x;
}

// -- objects ------------------------------------------------------------------

/// Reads the fields of one JSON object; absent and null are the same thing.
class object_reader {
public:
  object_reader(const json::value& v, const path_node* at) : at_(at) {
    if (!v.is_object())
      wrong_type(v, at, "object");
    obj_ = &v.get_object();
  }

  const json::value* find(std::string_view key) const {
    auto* v = obj_->if_contains(key);
    return (v == nullptr || v->is_null()) ? nullptr : v;
  }

  /// A path node for `key`, valid while the node lives in the caller's frame.
  path_node at(std::string_view key) const { return {at_, key, 0, false}; }

  const json::value& required(std::string_view key) const {
    if (auto* v = find(key))
      return *v;
    auto p = at(key);
    fail(decode_errc::missing_field, &p, "required field is missing");
  }

  template <class F>
  auto req(std::string_view key, F conv) const {
    auto p = at(key);
    return conv(required(key), &p);
  }

  template <class F>
  auto opt(std::string_view key, F conv) const
    -> std::optional<decltype(conv(std::declval<const json::value&>(),
                                   nullptr))> {
    auto* v = find(key);
    if (v == nullptr)
      return std::nullopt;
    auto p = at(key);
    return conv(*v, &p);
  }

  std::string str(std::string_view key) const { return req(key, as_string); }
  std::string str_or_empty(std::string_view key) const {
    return opt(key, as_string).value_or(std::string{});
  }
  int64_t int_(std::string_view key) const { return req(key, as_int); }
  int64_t int_or(std::string_view key, int64_t dflt) const {
    return opt(key, as_int).value_or(dflt);
  }
  double num_or(std::string_view key, double dflt) const {
    return opt(key, as_number).value_or(dflt);
  }

  template <class E>
  E enum_(std::string_view key, std::string_view allowed) const {
    auto p = at(key);
    return as_enum<E>(required(key), &p, allowed);
  }

  const path_node* path() const { return at_; }

private:
  const json::object* obj_ = nullptr;
  const path_node* at_;
};

// -- payload readers ----------------------------------------------------------

shoot_progress read_shoot_progress(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  shoot_progress x;
  x.shoot_id = r.str("shootId");
  x.status = r.enum_<shoot_status>("status",
                                   "queued|processing|completed|failed");
  x.processed_count = r.int_("processedCount");
  x.total_count = r.int_("totalCount");
  x.current_image = r.opt("currentImage", as_string);
  x.eta = r.opt("eta", as_number);
  // The legacy HTTP trigger validates only userId and shootId, so a deployed
  // sender may omit the provider.
  x.provider = r.str_or_empty("provider");
  x.error_message = r.opt("errorMessage", as_string);
  // `progress` (0..1) is tolerated and ignored: progress() derives it.
  return x;
}

credit_update read_credit_update(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  credit_update x;
  x.user_id = r.str("userId");
  x.new_balance = r.int_("newBalance");
  x.change = r.int_("change");
  x.reason = r.str_or_empty("reason");
  return x;
}

prompt_change read_prompt_change(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  prompt_change x;
  x.prompt_id = r.str("promptId");
  x.action = r.enum_<prompt_action>("action", "created|updated|deleted|voted");
  return x;
}

device_connection read_device_connection(const json::value& v,
                                         const path_node* at) {
  object_reader r{v, at};
  device_connection x;
  x.device_id = r.str("deviceId");
  x.platform = r.str_or_empty("platform");
  x.device_name = r.str_or_empty("deviceName");
  x.connected_at = r.opt("connectedAt", as_int);
  x.timestamp = r.opt("timestamp", as_int);
  return x;
}

admin_session_update read_admin_session_update(const json::value& v,
                                               const path_node* at) {
  object_reader r{v, at};
  admin_session_update x;
  x.session_id = r.str("sessionId");
  x.user_id = r.opt("userId", as_string);
  x.user_email = r.opt("userEmail", as_string);
  x.action = r.enum_<admin_action>("action", "new_message|session_updated");
  x.message_count = r.opt("messageCount", as_int);
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
  x.timestamp = r.int_("timestamp");
  x.value = r.req("value", as_number);
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
  x.provider = r.str("provider");
  x.health_score = r.num_or("healthScore", 0);
  x.status = r.enum_<health_status>("status", "healthy|degraded|unhealthy");
  x.active_requests = r.int_or("activeRequests", 0);
  x.requests_today = r.int_or("requestsToday", 0);
  x.cost_today = r.num_or("costToday", 0);
  x.avg_latency = r.num_or("avgLatency", 0);
  x.success_rate = r.num_or("successRate", 0);
  x.error_rate = r.num_or("errorRate", 0);
  x.rate_limit_hits = r.int_or("rateLimitHits", 0);
  x.rate_limit_proximity = r.num_or("rateLimitProximity", 0);
  x.recent_errors = r.int_or("recentErrors", 0);
  x.last_error = r.opt("lastError", as_string);
  x.last_error_time = r.opt("lastErrorTime", as_int);
  x.request_history = history_or_empty(r, "requestHistory");
  x.cost_history = history_or_empty(r, "costHistory");
  x.error_history = history_or_empty(r, "errorHistory");
  x.uptime_percentage = r.num_or("uptimePercentage", 0);
  x.last_downtime = r.opt("lastDowntime", as_int);
  return x;
}

provider_health read_provider_health(const json::value& v,
                                     const path_node* at) {
  object_reader r{v, at};
  provider_health x;
  x.providers = r.req("providers", [](const json::value& a,
                                      const path_node* p) {
    return read_array(a, p, read_provider_status);
  });
  x.timestamp = r.opt("timestamp", as_int);
  return x;
}

/// The credits of a state: a CREDIT_UPDATE's data without its userId.
credit_update read_credits(const json::value& v, const path_node* at,
                           const std::string& user) {
  object_reader r{v, at};
  credit_update x;
  x.user_id = user;
  x.new_balance = r.int_("newBalance");
  x.change = r.int_or("change", 0);
  x.reason = r.str_or_empty("reason");
  return x;
}

user_state read_user_state(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  user_state x;
  x.user_id = r.str_or_empty("userId");
  x.credits = r.opt("credits", [&](const json::value& c, const path_node* p) {
    return read_credits(c, p, x.user_id);
  });
  auto list = [&](std::string_view key, auto read_item) {
    return r.opt(key, [&](const json::value& a, const path_node* p) {
               return read_array(a, p, read_item);
             })
      .value_or(decltype(read_array(v, at, read_item)){});
  };
  x.shoots = list("shoots", read_shoot_progress);
  x.devices = list("devices", read_device_connection);
  return x;
}

ping read_ping(const json::value& v, const path_node* at) {
  object_reader r{v, at};
  return ping{r.opt("timestamp", as_number)};
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
  x.type_name = r.str("type");
  x.type = server_type_from(x.type_name);
  x.device_id = r.opt("deviceId", as_string);
  x.user_id = r.opt("userId", as_string);
  if (x.type == server_type::unknown) {
    // Tolerated whatever its shape: only its type matters to the counters.
    x.timestamp = r.opt("timestamp", as_int).value_or(0);
    auto p = r.at("data");
    x.body = read_unknown(r.find("data"), &p);
    return x;
  }
  x.timestamp = r.int_("timestamp");
  auto data = [&](auto reader) {
    auto p = r.at("data");
    return reader(r.required("data"), &p);
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
      x.body = batch{r.req("messages", [](const json::value& a,
                                          const path_node* p) {
        return read_array(a, p, read_server);
      })};
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
  x.type_name = r.str("type");
  x.type = client_type_from(x.type_name);
  auto* payload = r.find("payload");
  x.has_payload = payload != nullptr;
  auto p = r.at("payload");
  switch (x.type) {
    case client_type::ping:
      x.body = payload == nullptr ? ping{} : read_ping(*payload, &p);
      break;
    case client_type::update_progress:
      x.body = read_shoot_progress(r.required("payload"), &p);
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

// -- writers ------------------------------------------------------------------

using detail::json_writer;

void write(json_writer& w, const shoot_progress& x) {
  w.begin_object();
  w.field("shootId", x.shoot_id);
  w.field("status", to_string(x.status));
  w.field("processedCount", x.processed_count);
  w.field("totalCount", x.total_count);
  w.optional_field("currentImage", x.current_image);
  w.optional_field("eta", x.eta);
  w.field("provider", x.provider);
  w.optional_field("errorMessage", x.error_message);
  w.end_object();
}

void write(json_writer& w, const credit_update& x) {
  w.begin_object();
  w.field("userId", x.user_id);
  w.field("newBalance", x.new_balance);
  w.field("change", x.change);
  w.field("reason", x.reason);
  w.end_object();
}

void write(json_writer& w, const prompt_change& x) {
  w.begin_object();
  w.field("promptId", x.prompt_id);
  w.field("action", to_string(x.action));
  w.end_object();
}

void write(json_writer& w, const device_connection& x) {
  w.begin_object();
  w.field("deviceId", x.device_id);
  // The short shape the deployed server sends stays short.
  if (!x.platform.empty())
    w.field("platform", x.platform);
  if (!x.device_name.empty())
    w.field("deviceName", x.device_name);
  w.optional_field("connectedAt", x.connected_at);
  w.optional_field("timestamp", x.timestamp);
  w.end_object();
}

void write(json_writer& w, const admin_session_update& x) {
  w.begin_object();
  w.field("sessionId", x.session_id);
  w.optional_field("userId", x.user_id);
  w.optional_field("userEmail", x.user_email);
  w.field("action", to_string(x.action));
  w.optional_field("messageCount", x.message_count);
  w.end_object();
}

void write(json_writer& w, const std::vector<history_point>& xs) {
  w.begin_array();
  for (auto& x : xs) {
    w.begin_object();
    w.field("timestamp", x.timestamp);
    w.field("value", x.value);
    w.end_object();
  }
  w.end_array();
}

void write(json_writer& w, const provider_status& x) {
  w.begin_object();
  w.field("provider", x.provider);
  w.field("healthScore", x.health_score);
  w.field("status", to_string(x.status));
  w.field("activeRequests", x.active_requests);
  w.field("requestsToday", x.requests_today);
  w.field("costToday", x.cost_today);
  w.field("avgLatency", x.avg_latency);
  w.field("successRate", x.success_rate);
  w.field("errorRate", x.error_rate);
  w.field("rateLimitHits", x.rate_limit_hits);
  w.field("rateLimitProximity", x.rate_limit_proximity);
  w.field("recentErrors", x.recent_errors);
  w.key("lastError");
  if (x.last_error)
    w.value(*x.last_error);
  else
    w.null();
  w.optional_field("lastErrorTime", x.last_error_time);
  w.key("requestHistory");
  write(w, x.request_history);
  w.key("costHistory");
  write(w, x.cost_history);
  w.key("errorHistory");
  write(w, x.error_history);
  w.field("uptimePercentage", x.uptime_percentage);
  w.optional_field("lastDowntime", x.last_downtime);
  w.end_object();
}

void write(json_writer& w, const provider_health& x) {
  w.begin_object();
  w.key("providers");
  w.begin_array();
  for (auto& p : x.providers)
    write(w, p);
  w.end_array();
  w.optional_field("timestamp", x.timestamp);
  w.end_object();
}

void write(json_writer& w, const user_state& x) {
  w.begin_object();
  if (!x.user_id.empty())
    w.field("userId", x.user_id);
  w.key("credits");
  if (x.credits) {
    w.begin_object();
    w.field("newBalance", x.credits->new_balance);
    w.field("change", x.credits->change);
    w.field("reason", x.credits->reason);
    w.end_object();
  } else {
    w.null();
  }
  w.key("shoots");
  w.begin_array();
  for (auto& p : x.shoots)
    write(w, p);
  w.end_array();
  w.key("devices");
  w.begin_array();
  for (auto& d : x.devices)
    write(w, d);
  w.end_array();
  w.end_object();
}

void write(json_writer& w, const ping& x) {
  w.begin_object();
  w.optional_field("timestamp", x.timestamp);
  w.end_object();
}

void write(json_writer& w, const unknown_data& x) {
  w.raw(x.raw_json.empty() ? std::string_view{"null"} : x.raw_json);
}

void write(json_writer& w, const server_message& x);

void write_server_data(json_writer& w, const server_message& x) {
  std::visit(
    [&](const auto& body) {
      using T = std::decay_t<decltype(body)>;
      if constexpr (std::is_same_v<T, pong>) {
        // PONG carries no data.
      } else if constexpr (std::is_same_v<T, batch>) {
        w.key("messages");
        w.begin_array();
        for (auto& m : body.messages)
          write(w, m);
        w.end_array();
      } else if constexpr (std::is_same_v<T, unknown_data>) {
        if (!body.raw_json.empty()) {
          w.key("data");
          write(w, body);
        }
      } else {
        w.key("data");
        write(w, body);
      }
    },
    x.body);
}

void write(json_writer& w, const server_message& x) {
  w.begin_object();
  w.field("type", x.type == server_type::unknown ? std::string_view{x.type_name}
                                                 : to_string(x.type));
  write_server_data(w, x);
  w.field("timestamp", x.timestamp);
  w.optional_field("deviceId", x.device_id);
  w.optional_field("userId", x.user_id);
  w.end_object();
}

void write(json_writer& w, const client_message& x) {
  w.begin_object();
  w.field("type", x.type == client_type::unknown ? std::string_view{x.type_name}
                                                 : to_string(x.type));
  if (x.has_payload) {
    std::visit(
      [&](const auto& body) {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, unknown_data>) {
          if (body.raw_json.empty())
            return;
        }
        w.key("payload");
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

// -- public API ---------------------------------------------------------------

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
  return decode_frame<server_message>(text, lim, read_server);
}

decode_result<client_message> decode_client(std::string_view text,
                                            const decode_limits& lim) {
  return decode_frame<client_message>(
    text, lim, [keep = lim.keep_raw_payload](const json::value& v,
                                             const path_node* at) {
      return read_client(v, at, keep);
    });
}

std::string encode(const server_message& x) {
  return write_to_string(x);
}

std::string encode(const client_message& x) {
  return write_to_string(x);
}

std::string encode_envelope(std::string_view type, std::string_view data_json,
                            int64_t timestamp_ms, std::string_view device_id,
                            std::string_view user_id) {
  std::string out;
  out.reserve(data_json.size() + type.size() + device_id.size()
              + user_id.size() + 64);
  json_writer w{out};
  w.begin_object();
  w.field("type", type);
  w.key("data");
  w.raw(data_json);
  w.field("timestamp", timestamp_ms);
  w.field("deviceId", device_id);
  if (!user_id.empty())
    w.field("userId", user_id);
  w.end_object();
  return out;
}

template <class T>
std::string to_json(const T& x) {
  return write_to_string(x);
}

namespace {

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

template <class T>
decode_result<T> from_json(std::string_view text, const decode_limits& lim) {
  return decode_frame<T>(text, lim, read_payload<T>);
}

template <class T>
decode_result<T> from_json_value(const json::value& v) {
  try {
    return read_payload<T>(v, nullptr);
  } catch (failure& f) {
    return std::move(f.err);
  }
}

#define KULLSYNC_INSTANTIATE(T)                                                \
  template std::string to_json<T>(const T&);                                   \
  template decode_result<T> from_json<T>(std::string_view,                     \
                                         const decode_limits&);                \
  template decode_result<T> from_json_value<T>(const json::value&);

KULLSYNC_INSTANTIATE(shoot_progress)
KULLSYNC_INSTANTIATE(credit_update)
KULLSYNC_INSTANTIATE(prompt_change)
KULLSYNC_INSTANTIATE(device_connection)
KULLSYNC_INSTANTIATE(admin_session_update)
KULLSYNC_INSTANTIATE(provider_health)
KULLSYNC_INSTANTIATE(ping)
KULLSYNC_INSTANTIATE(user_state)
KULLSYNC_INSTANTIATE(server_message)
KULLSYNC_INSTANTIATE(client_message)

} // namespace kullsync::msg

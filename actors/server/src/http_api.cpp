// The server's HTTP API: the legacy server's triggers (/api/sync/*), plus
// admin-session, provider-health and state.

#include <algorithm>
#include <array>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/json_value.hpp"
#include "kullsync/messages/keys.hpp"
#include "kullsync/transports/io_thread.hpp"
#include "http_api_state.hpp"
#include "metrics_report.hpp"

namespace json = boost::json;

namespace kullsync::server {

key_digest digest(std::string_view key) {
  key_digest d;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
  return d;
}

http_response json_response(unsigned status, const json::value& v) {
  return http_response{status, json::serialize(v), "application/json"};
}

http_response error(unsigned status, std::string_view message) {
  return json_response(status, json::object{{"error", message}});
}

http_response unpublished(const caf::error& why, std::string_view what) {
  if (outcome_unknown(why))
    return json_response(504, json::object{
                                {"error", std::string{what}
                                            + ": the broker did not answer; it may have "
                                              "been published. Retry only with the same "
                                              "Idempotency-Key"},
                                {"outcome", "unknown"}});
  return error(503, std::string{what} + " unavailable: not published");
}

int64_t now_ms(api_ptr self) {
  return epoch_ms(self->home_system(), self->state.env->clock);
}

bool authorised(api_ptr self, const http_exchange& ex) {
  auto& st = self->state;
  if (st.keys.empty())
    return true; // legacy mode: the triggers are open, as deployed
  auto h = header_value(ex.request.headers, "authorization");
  std::string_view key = h ? bearer_credentials(*h).value_or("") : "";
  auto d = digest(key);
  bool known = false;
  for (auto& k : st.keys) // every key compared: the time says nothing
    known |= CRYPTO_memcmp(k.data(), d.data(), d.size()) == 0;
  auto now = now_ms(self);
  if (!known || key.empty()) {
    server_counters::add(st.env->counters->http_unauthorized);
    if (st.refusals_logged.should_log(now))
      st.log->warn("{}: {} {}: refused, no valid API key (401)", ex.request.peer,
                   ex.request.method, ex.request.path());
    ex.respond(error(401, "A valid API key is required: Authorization: Bearer <key>"));
    return false;
  }
  if (st.env->cfg.limits.api_key_rate > 0
      && !st.per_key->take(std::string{reinterpret_cast<const char*>(d.data()), d.size()}, now)) {
    server_counters::add(st.env->counters->http_rate_limited);
    if (st.refusals_logged.should_log(now))
      st.log->warn("{} {}: an API key is over its rate (429)", ex.request.method,
                   ex.request.path());
    ex.respond(error(429, "Rate limited"));
    return false;
  }
  return true;
}

namespace {

constexpr std::string_view prefix = api_prefix;

/// A non-empty string field, or nullptr.
const json::string* text_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string() || v->get_string().empty())
    return nullptr;
  return &v->get_string();
}

/// The id fields of a body that name a user, a shoot or a prompt: each must
/// be a valid id (they become JSON text on users' sockets). "" if they are,
/// else the answer's error.
std::string check_ids(api_ptr self, const json::object& o) {
  for (auto key : {msg::keys::user_id, msg::keys::shoot_id, msg::keys::prompt_id}) {
    auto* v = o.if_contains(key);
    if (v != nullptr && v->is_string() && !v->get_string().empty()
        && !msg::valid_id(v->get_string())) {
      server_counters::add(self->state.env->counters->invalid_ids);
      return std::string{key} + " must be at most 128 bytes of UTF-8 without "
                                "control characters";
    }
  }
  return {};
}

bool has_value(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v != nullptr && !v->is_null();
}

/// The request's Idempotency-Key header, "" without one.
std::string idempotency_key(const http_exchange& ex) {
  return std::string{header_value(ex.request.headers, "idempotency-key").value_or("")};
}

/// Publishes to `user` through its hub shard, then calls `done` with the
/// message's position in the user's stream (0: the type is not numbered),
/// or `failed` with why it was not.
template <class F, class G>
void publish(api_ptr self, const http_exchange& ex, const std::string& user,
             msg::server_type type, msg::server_body body, F done, G failed) {
  auto m = msg::make_server_message(type, std::move(body), now_ms(self),
                                    "server", user);
  self->request(hub_for(self->state.env->hubs, user), caf::infinite, trigger_atom::value,
                user, std::move(m), idempotency_key(ex))
    .then([done](uint64_t seq) mutable { done(seq); },
          [failed](const caf::error& e) mutable { failed(e); });
}

/// The same, answering the publish's failure itself.
template <class F>
void publish(api_ptr self, const http_exchange& ex, const std::string& user,
             msg::server_type type, msg::server_body body, F done) {
  publish(self, ex, user, type, std::move(body), std::move(done),
          [ex](const caf::error& e) { ex.respond(unpublished(e, "publish")); });
}

/// A publish's answer as the contract writes it: {"success":true,"seq":n,...}
/// (no seq for a type that is not numbered, or one that publishes to many).
json::object ok(msg::server_type type, uint64_t seq = 0) {
  json::object r{{"success", true}};
  if (seq != 0)
    r[msg::keys::seq] = seq;
  r[msg::keys::type] = msg::to_string(type);
  return r;
}

/// Decodes the (parsed) body as payload T; on failure answers 400 with the
/// codec's detail.
template <class T>
std::optional<T> payload(const http_exchange& ex, const json::value& body) {
  auto r = msg::from_json_value<T>(body);
  if (!r) {
    ex.respond(error(400, r.error().detail));
    return std::nullopt;
  }
  return std::move(*r);
}

/// The legacy triggers for one user: the legacy 400 message when a field it
/// requires is missing, then the codec's own check, then the broadcast.
template <class T>
void to_user(api_ptr self, const http_exchange& ex, const json::value& body,
             msg::server_type type, bool complete, std::string_view missing) {
  auto* user = text_field(body.get_object(), msg::keys::user_id);
  if (user == nullptr || !complete)
    return ex.respond(error(400, missing));
  auto p = payload<T>(ex, body);
  if (!p)
    return;
  std::string uid{user->data(), user->size()};
  publish(self, ex, uid, type, std::move(*p), [ex, type, uid](uint64_t seq) {
    auto r = ok(type, seq);
    r[msg::keys::user_id] = uid;
    ex.respond(json_response(200, r));
  });
}

void shoot_progress(api_ptr self, const http_exchange& ex, const json::value& body) {
  auto& o = body.get_object();
  to_user<msg::shoot_progress>(self, ex, body, msg::server_type::shoot_progress,
                               text_field(o, msg::keys::shoot_id) != nullptr,
                               "userId and shootId are required");
}

void credit_update(api_ptr self, const http_exchange& ex, const json::value& body) {
  auto& o = body.get_object();
  to_user<msg::credit_update>(self, ex, body, msg::server_type::credit_update,
                              has_value(o, msg::keys::new_balance) && has_value(o, msg::keys::change),
                              "userId, newBalance, and change are required");
}

void prompt_change(api_ptr self, const http_exchange& ex, const json::value& body) {
  auto& o = body.get_object();
  if (text_field(o, msg::keys::prompt_id) == nullptr || text_field(o, msg::keys::action) == nullptr)
    return ex.respond(error(400, "promptId and action are required"));
  auto p = payload<msg::prompt_change>(ex, body);
  if (!p)
    return;
  auto* ids = o.if_contains(msg::keys::user_ids);
  // Like the legacy server: no userIds, nobody to notify, still a success.
  if (ids != nullptr && ids->is_array())
    for (auto& v : ids->get_array())
      if (v.is_string() && !msg::valid_id(v.get_string()))
        return ex.respond(error(400, "userIds must be valid ids"));
  if (ids == nullptr || ids->is_null()) {
    auto r = ok(msg::server_type::prompt_change);
    r["recipients"] = 0;
    r["seqs"] = json::object{}; // published to nobody (PROTOCOL.md: "seqs" answers it)
    return ex.respond(json_response(200, r));
  }
  if (!ids->is_array())
    return ex.respond(error(400, "userIds must be an array of strings"));
  std::vector<std::string> users;
  for (auto& v : ids->get_array()) {
    if (!v.is_string() || v.get_string().empty())
      return ex.respond(error(400, "userIds must be an array of strings"));
    users.emplace_back(v.get_string().data(), v.get_string().size());
  }
  // A user listed twice is one recipient: published once, one seq to answer.
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  // One answer once every user's hub has answered: {"seqs":{user:n}}, or
  // the failure. 503 only when none of it was published; when some was, or
  // may have been, 504: a retry with the same Idempotency-Key publishes
  // only what is missing.
  struct fan_in {
    json::object answer;
    size_t left = 0;
    std::optional<caf::error> failure;
    bool maybe_published = false; // by any user's hub
  };
  auto f = std::make_shared<fan_in>();
  f->answer = ok(msg::server_type::prompt_change);
  f->answer["recipients"] = users.size();
  f->answer["seqs"] = json::object{};
  f->left = users.size();
  if (users.empty())
    return ex.respond(json_response(200, f->answer));
  auto finish = [ex, f] {
    if (--f->left > 0)
      return;
    if (!f->failure)
      return ex.respond(json_response(200, f->answer));
    if (f->maybe_published)
      return ex.respond(unpublished(make_error(broker_errc::outcome_unknown,
                                               "some users' publishes failed"),
                                    "publish"));
    ex.respond(unpublished(*f->failure, "publish"));
  };
  for (auto& u : users)
    publish(
      self, ex, u, msg::server_type::prompt_change, *p,
      [f, u, finish](uint64_t seq) {
        f->answer["seqs"].get_object()[u] = seq;
        f->maybe_published = true;
        finish();
      },
      [f, finish](const caf::error& e) {
        f->maybe_published |= outcome_unknown(e);
        f->failure = e;
        finish();
      });
}

template <class T>
void to_admin(api_ptr self, const http_exchange& ex, const json::value& body,
              msg::server_type type) {
  auto p = payload<T>(ex, body);
  if (!p)
    return;
  publish(self, ex, self->state.env->cfg.admin_user, type, std::move(*p),
          [ex, type](uint64_t seq) {
            ex.respond(json_response(200, ok(type, seq)));
          });
}

/// The user's state, for the user's own token: `?token=` (or, without API
/// keys, `Authorization: Bearer`), checked like a socket's.
void state(api_ptr self, const http_exchange& ex) {
  auto token = self->state.keys.empty()
                 ? extract_token(ex.request.target, ex.request.headers)
                 : query_param(ex.request.target, "token").value_or("");
  auto r = self->state.env->cfg.auth->authenticate(
    auth_request{token, std::nullopt, false, now_ms(self)});
  if (!r.who)
    return ex.respond(error(401, r.failure.reason));
  if (token_revoked(self->state.env->cfg, *r.who, now_ms(self)))
    return ex.respond(error(401, "Token revoked")); // as a socket is refused (4002)
  // Serialising a user's whole state is the one large reply: a helper on
  // CAF's threads writes it, so the io thread never stalls on it.
  auto hub = hub_for(self->state.env->hubs, r.who->user_id);
  self->home_system().spawn([hub, user = r.who->user_id, ex](caf::event_based_actor* a) {
    a->request(hub, std::chrono::seconds{10}, snapshot_atom::value, user)
      .then(
        [a, ex](const msg::user_state& s) {
          ex.respond(http_response{200, msg::to_json(s), "application/json"});
          a->quit();
        },
        [a, ex](const caf::error&) {
          ex.respond(error(503, "state unavailable"));
          a->quit();
        });
  });
}

/// GET /metrics: the hubs' counters (asked of every shard), the shared
/// counters, the transport's and the process's, in Prometheus' text format.
void scrape(api_ptr self, const http_exchange& ex) {
  auto& hubs = self->state.env->hubs;
  auto total = std::make_shared<hub_stats>();
  auto left = std::make_shared<size_t>(hubs.size());
  auto env = self->state.env;
  for (auto& h : hubs)
    self->request(h, std::chrono::seconds{5}, stats_atom::value)
      .then(
        [=](const hub_stats& s) {
          *total += s;
          if (--*left != 0)
            return;
          metrics::writer w;
          write_server_metrics(w, *total, *env->counters);
          w.gauge("kullsync_draining", "1 while an operator drains this node (POST "
                  "/api/sync/drain): not ready, its sockets closed at a pace",
                  env->cfg.draining->load() ? 1 : 0);
          if (env->cfg.transport_metrics)
            env->cfg.transport_metrics(w);
          w.process();
          ex.respond(http_response{200, w.text(), "text/plain; version=0.0.4; charset=utf-8"});
        },
        [=](const caf::error&) {
          if (std::exchange(*left, 0) != 0)
            ex.respond(error(503, "metrics unavailable"));
        });
}

/// /healthz, /readyz and /metrics: for the load balancer and Prometheus,
/// outside /api/sync; true if `ex` was one of them.
bool operations(api_ptr self, const http_exchange& ex) {
  auto path = ex.request.path();
  if (path != "/healthz" && path != "/readyz" && path != "/metrics")
    return false;
  if (ex.request.method != "GET") {
    ex.respond(error(405, "Method not allowed"));
    return true;
  }
  if (path == "/healthz") {
    ex.respond(json_response(200, json::object{{"status", "ok"}}));
  } else if (path == "/readyz") {
    auto& cfg = self->state.env->cfg;
    bool ok = node_ready(cfg);
    const char* status = ok ? "ready" : cfg.draining->load() ? "draining" : "not ready";
    ex.respond(json_response(ok ? 200 : 503, json::object{{"status", status}}));
  } else if (authorised(self, ex)) {
    scrape(self, ex);
  }
  return true;
}

void route(api_ptr self, const http_exchange& ex) {
  auto& req = ex.request;
  auto path = req.path();
  if (operations(self, ex))
    return;
  if (path.rfind(prefix, 0) != 0)
    return ex.respond(error(404, "Not found"));
  auto sub = path.substr(prefix.size());
  if (sub == "/status") {
    if (req.method != "GET")
      return ex.respond(error(405, "Method not allowed"));
    return ex.respond(json_response(
      200, json::object{{"status", "ok"},
                        {"timestamp", now_ms(self)},
                        {"service", "websocket-sync"}}));
  }
  if (!authorised(self, ex))
    return;
  if (operator_route(self, ex, sub))
    return;
  if (sub == "/state") {
    if (req.method != "GET")
      return ex.respond(error(405, "Method not allowed"));
    return state(self, ex);
  }
  using handler = void (*)(api_ptr, const http_exchange&, const json::value&);
  static const std::pair<std::string_view, handler> posts[] = {
    {"/shoot-progress", shoot_progress},
    {"/credit-update", credit_update},
    {"/prompt-change", prompt_change},
    {"/admin-session",
     [](api_ptr s, const http_exchange& e, const json::value& b) {
       to_admin<msg::admin_session_update>(s, e, b,
                                           msg::server_type::admin_session_update);
     }},
    {"/provider-health",
     [](api_ptr s, const http_exchange& e, const json::value& b) {
       to_admin<msg::provider_health>(s, e, b, msg::server_type::provider_health);
     }},
  };
  for (auto& [name, fn] : posts) {
    if (sub != name)
      continue;
    if (req.method != "POST")
      return ex.respond(error(405, "Method not allowed"));
    boost::system::error_code ec;
    auto body = json::parse(req.body, ec);
    if (ec)
      return ex.respond(error(400, "Invalid JSON body: " + ec.message()));
    if (!body.is_object())
      return ex.respond(error(400, "Invalid JSON body: expected an object"));
    if (auto bad = check_ids(self, body.get_object()); !bad.empty())
      return ex.respond(error(400, bad));
    return fn(self, ex, body);
  }
  ex.respond(error(404, "Not found"));
}

http_handler_actor::behavior_type http_api(api_ptr self,
                                           std::shared_ptr<const session_env> env) {
  auto& st = self->state;
  st.env = std::move(env);
  for (auto& k : st.env->cfg.api_keys)
    st.keys.push_back(digest(k));
  st.per_key = std::make_unique<bucket_table>(st.env->cfg.limits.api_key_rate,
                                              st.env->cfg.limits.api_key_burst);
  run_on_io_thread(self);
  return {
    [=](http_atom, const http_exchange& ex) {
      try {
        route(self, ex);
      } catch (const std::exception& e) {
        self->state.log->error("{} {} failed: {}", ex.request.method,
                               ex.request.target, e.what());
        ex.respond(error(500, "internal error"));
      }
    },
  };
}

} // namespace

http_handler_actor spawn_http_api(caf::actor_system& sys,
                                  std::shared_ptr<const session_env> env) {
  return sys.spawn(http_api, std::move(env));
}

} // namespace kullsync::server

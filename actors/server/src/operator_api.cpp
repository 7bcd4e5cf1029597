// The operators' part of the HTTP API (docs/PROTOCOL.md, "Operators' API"):
// who is connected, what a user's stream holds, disconnect and revoke, the
// cluster's nodes, a node's drain. Every answer but the drain's covers the whole cluster, whichever node the
// call lands on: the user's hub shard asks the stream (its broker), and an
// order to close sockets travels in the user's stream to every node. Replies
// that grow with a user's history are written by a one-shot helper actor on
// CAF's threads, never on the io thread.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "http_api_state.hpp"
#include "kullsync/common/numbers.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/server/auth.hpp"

namespace json = boost::json;

namespace kullsync::server {

namespace {

constexpr int64_t default_history_limit = 100;
constexpr int64_t max_history_limit = 1000;
constexpr size_t max_close_reason = 123; // bytes a WebSocket close frame holds

/// A query parameter as a number in [lo, hi]; `dflt` when absent; nothing
/// when it is not one.
std::optional<int64_t> query_number(const http_exchange& ex, std::string_view key,
                                    int64_t dflt, int64_t lo, int64_t hi) {
  auto v = query_param(ex.request.target, key);
  if (!v)
    return dflt;
  auto x = to_int<int64_t>(*v); // no sign, no space: a '-' makes it none
  if (!x || *x < lo || *x > hi)
    return std::nullopt;
  return x;
}

/// The node's id in an instance name ("<node id>.<16 hex digits>").
std::string node_of(const std::string& instance) {
  auto dot = instance.rfind('.');
  return dot == std::string::npos ? instance : instance.substr(0, dot);
}

/// Runs `f(helper)` in a one-shot actor on CAF's threads: what it writes
/// (a user's history, say) never holds the io thread.
template <class F>
void off_io(api_ptr self, F f) {
  self->home_system().spawn([f = std::move(f)](caf::event_based_actor* a) { f(a); });
}

void user(api_ptr self, const http_exchange& ex, const std::string& id) {
  auto hub = hub_for(self->state.env->hubs, id);
  auto& store_of = self->state.env->cfg.cluster.store_of;
  auto store = store_of ? store_of(id) : std::string{};
  off_io(self, [hub, id, ex, store](caf::event_based_actor* a) {
    a->request(hub, std::chrono::seconds{10}, head_atom::value, id)
      .then(
        [a, ex, id, store](const stream_head& h) {
          json::array devices;
          for (auto& d : h.devices)
            devices.push_back(json::object{{"deviceId", d.device},
                                           {"node", node_of(d.node)},
                                           {"protocol", d.protocol},
                                           {"connectedAt", d.connected_at}});
          auto size = h.first == 0 ? 0 : h.top - h.first + 1;
          json::object history{{"size", size},
                               {"first", size ? json::value(h.first) : json::value(nullptr)},
                               {"last", size ? json::value(h.top) : json::value(nullptr)}};
          json::object answer{{"userId", id},
                              {"epoch", h.epoch},
                              {"seq", h.top},
                              {"devices", std::move(devices)},
                              {"history", std::move(history)}};
          if (!store.empty())
            answer["redis"] = store; // the instance that keeps the stream
          ex.respond(json_response(200, answer));
          a->quit();
        },
        [a, ex, store](const caf::error& e) {
          ex.respond(error(503, "the user's stream is unavailable"
                                  + (store.empty() ? std::string{}
                                                   : " (kept in Redis " + store + ")")
                                  + ": " + a->system().render(e)));
          a->quit();
        });
  });
}

/// {"epoch","seq","complete","messages":[...]}: the v2 envelopes as sent.
http_response history_page(const stream_head& h, bool complete, const stream_range& r) {
  std::string out = "{\"epoch\":" + msg::json_string(h.epoch) + ",\"seq\":"
                    + std::to_string(h.top) + ",\"complete\":" + (complete ? "true" : "false")
                    + ",\"messages\":[";
  bool first = true;
  for (auto& m : r.messages) {
    if (!first)
      out += ',';
    first = false;
    out += m->frame.str();
  }
  out += "]}";
  return http_response{200, std::move(out), "application/json"};
}

/// Sends the page of `id`'s history after `from` (at most `count`): the
/// head says what the history holds, then a read fetches it. Messages the
/// history dropped between the two make it try again (`tries` times) from
/// what it then holds.
void send_history(caf::event_based_actor* a, hub_actor hub, http_exchange ex,
                  std::string id, uint64_t from, uint64_t count, int tries) {
  auto failed = [a, ex](const caf::error&) {
    ex.respond(error(503, "the user's stream is unavailable"));
    a->quit();
  };
  a->request(hub, std::chrono::seconds{10}, head_atom::value, id)
    .then(
      [=](const stream_head& h) {
        // What the history no longer holds after `from` is missing: the
        // page starts at the oldest it holds, and says it is not complete.
        auto start = from;
        bool complete = true;
        if (from < h.top && (h.first == 0 || h.first > from + 1)) {
          complete = false;
          start = h.first == 0 ? h.top : h.first - 1;
        }
        auto upto = std::min<uint64_t>(h.top, start + count);
        if (start >= upto) {
          ex.respond(history_page(h, complete, {}));
          a->quit();
          return;
        }
        a->request(hub, std::chrono::seconds{10}, read_atom::value, id, h.epoch, start, upto)
          .then(
            [=](const stream_range& r) {
              if (!r.complete && tries > 1)
                return send_history(a, hub, ex, id, from, count, tries - 1);
              // Still dropped as it was read: no page of it is certain.
              ex.respond(history_page(h, complete && r.complete,
                                      r.complete ? r : stream_range{}));
              a->quit();
            },
            failed);
      },
      failed);
}

void history(api_ptr self, const http_exchange& ex, const std::string& id) {
  auto since = query_number(ex, "since", 0, 0, INT64_MAX);
  auto limit = query_number(ex, "limit", default_history_limit, 1, max_history_limit);
  if (!since || !limit)
    return ex.respond(error(400, "since is a position (0 or more) and limit a number from 1 to "
                                   + std::to_string(max_history_limit)));
  auto hub = hub_for(self->state.env->hubs, id);
  auto from = static_cast<uint64_t>(*since);
  auto count = static_cast<uint64_t>(*limit);
  off_io(self, [hub, id, ex, from, count](caf::event_based_actor* a) {
    send_history(a, hub, ex, id, from, count, 3);
  });
}

/// The body as a JSON object ({} when empty), or the 400 is sent.
std::optional<json::object> body_object(const http_exchange& ex) {
  if (ex.request.body.empty())
    return json::object{};
  boost::system::error_code ec;
  auto v = json::parse(ex.request.body, ec);
  if (ec) {
    ex.respond(error(400, "Invalid JSON body: " + ec.message()));
    return std::nullopt;
  }
  if (!v.is_object()) {
    ex.respond(error(400, "Invalid JSON body: expected an object"));
    return std::nullopt;
  }
  return std::move(v.get_object());
}

/// Answers {"success":true,"closed":n} once the hub did it; else 503 (or
/// 504, the outcome unknown) saying what was not done and why, and logs it.
template <class... Ts>
void closed_reply(api_ptr self, const http_exchange& ex, const std::string& id,
                  std::string what, Ts&&... xs) {
  self->request(hub_for(self->state.env->hubs, id), std::chrono::seconds{10},
                std::forward<Ts>(xs)...)
    .then([ex](uint64_t n) { ex.respond(json_response(200, json::object{{"success", true},
                                                                        {"closed", n}})); },
          [self, ex, id, what](const caf::error& e) {
            auto why = self->system().render(e);
            self->state.log->warn("user {}: {} failed: {}", id, what, why);
            if (outcome_unknown(e))
              return ex.respond(unpublished(e, what));
            ex.respond(error(503, what + " failed, nothing done: " + why));
          });
}

void disconnect(api_ptr self, const http_exchange& ex, const std::string& id) {
  auto body = body_object(ex);
  if (!body)
    return;
  std::string device;
  if (auto* d = body->if_contains("deviceId"); d && !d->is_null()) {
    if (!d->is_string() || !msg::valid_id(d->get_string()))
      return ex.respond(error(400, "deviceId must be a valid id (1 to 128 bytes of UTF-8 "
                                   "without control characters)"));
    device = d->get_string();
  }
  int64_t code = close_code::stream_interrupted;
  if (auto* c = body->if_contains("code"); c && !c->is_null()) {
    if (!c->is_int64() || (c->get_int64() != 1000 && c->get_int64() != 4002
                           && c->get_int64() != 4003 && c->get_int64() != 4009))
      return ex.respond(error(400, "code must be 1000, 4002 (do not retry with this token), "
                                   "4003 (get a new token) or 4009 (resume now)"));
    code = c->get_int64();
  }
  std::string reason = "disconnected by an operator";
  if (auto* r = body->if_contains("reason"); r && !r->is_null()) {
    if (!r->is_string() || r->get_string().size() > max_close_reason
        || (!r->get_string().empty() && !msg::valid_id(r->get_string())))
      return ex.respond(error(400, "reason must be text of at most 123 bytes without "
                                   "control characters"));
    reason = r->get_string();
  }
  self->state.log->info("user {}: operator closes {} with {}", id,
                        device.empty() ? std::string{"every socket"} : "device " + device, code);
  closed_reply(self, ex, id, "disconnect", close_atom::value, id, device,
               static_cast<uint16_t>(code), reason);
}

void revoke(api_ptr self, const http_exchange& ex, const std::string& id) {
  auto& cfg = self->state.env->cfg;
  if (!cfg.auth->signed_tokens())
    return ex.respond(error(400, "nothing to revoke: this server takes unsigned (legacy) "
                                 "tokens only"));
  auto body = body_object(ex);
  if (!body)
    return;
  auto now = now_ms(self);
  int64_t before = now;
  if (auto* b = body->if_contains("before"); b && !b->is_null()) {
    if (!b->is_int64() || b->get_int64() < 0 || b->get_int64() > now + 366LL * 86'400'000)
      return ex.respond(error(400, "before is a time in epoch milliseconds"));
    before = b->get_int64();
  }
  // A token issued before `before` lives until then plus the longest
  // lifetime at the most: the revocation is kept until none can.
  revocation r{id, before, std::max(before, now) + cfg.max_token_lifetime_ms};
  self->state.log->info("user {}: operator revokes the tokens issued before {}", id, before);
  // Stored in the first Redis instance: while it is lost, refused (a
  // disconnect still closes the user's sockets).
  closed_reply(self, ex, id, "revoke", revoke_atom::value, r);
}

void nodes(api_ptr self, const http_exchange& ex) {
  auto& env = *self->state.env;
  auto& cfg = env.cfg;
  auto me = node_description(cfg.cluster.node_id, cfg.started_at_ms, *env.counters,
                             node_ready(cfg));
  if (!cfg.cluster.broker)
    return ex.respond(http_response{200, "{\"nodes\":[" + me + "]}", "application/json"});
  self->request(cfg.cluster.broker, std::chrono::seconds{10}, nodes_atom::value)
    .then(
      [ex](const std::vector<std::string>& listed) {
        json::array out;
        for (auto& text : listed) {
          boost::system::error_code ec;
          auto v = json::parse(text, ec);
          if (!ec && v.is_object()) // what another node wrote, checked
            out.push_back(std::move(v));
        }
        ex.respond(json_response(200, json::object{{"nodes", std::move(out)}}));
      },
      [ex](const caf::error&) { ex.respond(error(503, "the cluster's list is unavailable")); });
}

constexpr int64_t default_drain_rate = 500; // sockets a second
constexpr int64_t max_drain_rate = 1'000'000;

/// This node's drain (not the cluster's: each node is drained by its own
/// address): POST starts it or changes its pace, DELETE ends it, GET says
/// where it stands.
void drain(api_ptr self, const http_exchange& ex) {
  auto& env = *self->state.env;
  auto& method = ex.request.method;
  // Named: an operator who reached a node through a balancer sees which.
  auto node = env.cfg.cluster.node_id.empty() ? std::string{"node"} : env.cfg.cluster.node_id;
  auto reply = [ex, counters = env.counters, node](const drain_status& d) {
    ex.respond(json_response(
      200, json::object{{"nodeId", node},
                        {"draining", d.draining},
                        {"rate", d.rate},
                        {"left", d.left},
                        {"sockets", counters->sockets_now.load(std::memory_order_relaxed)}}));
  };
  auto failed = [ex](const caf::error&) { ex.respond(error(503, "the drain did not answer")); };
  if (method == "GET")
    return self->request(env.drain, std::chrono::seconds{5}, get_atom::value).then(reply, failed);
  if (method == "DELETE") {
    self->state.log->info("an operator ends the node's drain");
    return self->request(env.drain, std::chrono::seconds{5}, undrain_atom::value)
      .then(reply, failed);
  }
  if (method != "POST")
    return ex.respond(error(405, "Method not allowed"));
  auto body = body_object(ex);
  if (!body)
    return;
  for (auto& kv : *body)
    if (kv.key() != "rate") // a misspelt pace must not drain at the default
      return ex.respond(error(400, "unknown field '" + std::string{kv.key()}
                                     + "': the drain takes only rate"));
  int64_t rate = default_drain_rate;
  if (auto* r = body->if_contains("rate"); r && !r->is_null()) {
    if (!r->is_int64() || r->get_int64() < 1 || r->get_int64() > max_drain_rate)
      return ex.respond(error(400, "rate must be a whole number of sockets a second, 1 to "
                                   + std::to_string(max_drain_rate)));
    rate = r->get_int64();
  }
  self->state.log->info("an operator drains the node at {} sockets a second", rate);
  self->request(env.drain, std::chrono::seconds{5}, drain_atom::value,
                static_cast<uint32_t>(rate))
    .then(reply, failed);
}

} // namespace

bool operator_route(api_ptr self, const http_exchange& ex, std::string_view sub) {
  auto& method = ex.request.method;
  if (sub == "/drain") {
    drain(self, ex);
    return true;
  }
  if (sub == "/nodes") {
    if (method != "GET")
      ex.respond(error(405, "Method not allowed"));
    else
      nodes(self, ex);
    return true;
  }
  auto no_such = [&] {
    ex.respond(error(400, "no such operation: users/{userId}[/history|/disconnect|/revoke]"));
    return true;
  };
  if (sub == "/users" || sub == "/users/")
    return no_such();
  constexpr std::string_view users = "/users/";
  if (sub.rfind(users, 0) != 0)
    return false;
  // /users/{userId}[/history|/disconnect|/revoke]
  auto rest = sub.substr(users.size());
  auto slash = rest.find('/');
  auto id = path_unescape(rest.substr(0, slash));
  auto action = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (slash != std::string_view::npos && action.empty())
    return no_such();
  if (!id || !msg::valid_id(*id)) {
    server_counters::add(self->state.env->counters->invalid_ids);
    ex.respond(error(400, "userId must be 1 to 128 bytes of UTF-8 without control characters "
                          "(percent-encoded in the path)"));
    return true;
  }
  struct route {
    std::string_view action, method;
    void (*handle)(api_ptr, const http_exchange&, const std::string&);
  };
  static const route routes[] = {{"", "GET", user},
                                 {"history", "GET", history},
                                 {"disconnect", "POST", disconnect},
                                 {"revoke", "POST", revoke}};
  for (auto& r : routes) {
    if (r.action != action)
      continue;
    if (method != r.method)
      ex.respond(error(405, "Method not allowed"));
    else
      r.handle(self, ex, *id);
    return true;
  }
  return no_such();
}

} // namespace kullsync::server

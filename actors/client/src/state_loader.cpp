// What the server remembers for the user (GET /api/sync/state), loaded at
// start, every `state_reload` while the socket is down, and once right after
// each (re)connect of a v1 link: it covers what was published while this
// device was away. It carries the token the connection dials with (a signed
// one from the provider, else the configured one). The coordinator decides
// what of it to take (see coordinator_actor::load).
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/common/log_throttle.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "spawn.hpp"

namespace kullsync {

namespace {

using reload_atom = caf::atom_constant<caf::atom("reload")>;

/// A status subscriber, plus its own reload timer.
using state_loader_actor
  = status_subscriber_actor::extend<caf::reacts_to<reload_atom>>;

struct state_loader_state {
  client_config cfg;
  http_client_actor http;
  coordinator_actor coord;
  connection_impl conn;
  connection_status status;
  log_throttle refused_log; // a refused load repeats every state_reload
  uint64_t loaded_link = 0; // the link whose connect was covered
  bool loading = false;
  std::shared_ptr<spdlog::logger> log = log::get("client.state_loader");
  static inline const char* name = "kullsync.state_loader";
};

using loader_ptr = state_loader_actor::stateful_pointer<state_loader_state>;

/// http(s)://host:port/api/sync/state?token=... for the endpoint `ws_url`.
std::string state_url(const std::string& ws_url, const std::string& token) {
  auto base = http_base_of(ws_url);
  if (base.empty())
    return {};
  return base + "/api/sync/state?token=" + query_escape(token);
}

int64_t now_ms(loader_ptr self) {
  using namespace std::chrono;
  return duration_cast<milliseconds>(self->clock().now().time_since_epoch()).count();
}

void fetch(loader_ptr self, const std::string& token);

void load(loader_ptr self) {
  auto& st = self->state;
  if (st.loading)
    return;
  st.loading = true;
  self->request(st.conn, caf::infinite, get_atom::value, token_atom::value)
    .then(
      [=](const std::string& token) {
        if (token.empty()) {
          // The provider has given none yet: the first dial asks it.
          self->state.loading = false;
          return;
        }
        fetch(self, token);
      },
      [=](const caf::error&) { self->state.loading = false; });
}

void fetch(loader_ptr self, const std::string& token) {
  auto& st = self->state;
  auto url = state_url(st.status.url.empty() ? st.cfg.connection.url : st.status.url, token);
  if (url.empty()) {
    st.loading = false;
    return;
  }
  self->request(st.http, caf::infinite, fetch_atom::value, std::string{"GET"},
                std::move(url), std::string{})
    .then(
      [=](const http_result& r) {
        auto& st = self->state;
        st.loading = false;
        if (r.status != 200) {
          // A legacy server has no such route (404): nothing to load. A
          // refusal (401) or an outage repeats each reload: said now and then.
          if (r.status != 404 && st.refused_log.should_log(now_ms(self), 60'000))
            st.log->warn("state not loaded: {} (retried every {} s while the socket is down)",
                         r.status == 0 ? r.error : "HTTP " + std::to_string(r.status),
                         std::chrono::duration_cast<std::chrono::seconds>(st.cfg.state_reload)
                           .count());
          return;
        }
        st.refused_log.reset();
        auto s = msg::from_json<msg::user_state>(r.body);
        if (!s)
          return st.log->warn("state not loaded: {}", s.error().detail);
        self->send(st.coord, load_atom::value, std::move(*s));
      },
      [=](const caf::error&) { self->state.loading = false; });
}

state_loader_actor::behavior_type state_loader(loader_ptr self, client_config cfg,
                                               http_client_actor http,
                                               coordinator_actor coord,
                                               connection_impl conn) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.http = std::move(http);
  st.coord = std::move(coord);
  st.conn = std::move(conn);
  self->link_to(st.coord); // the engine's stop() ends it too
  load(self);
  self->delayed_send(self, st.cfg.state_reload, reload_atom::value);
  return {
    [=](status_atom, const connection_status& s) {
      auto& st = self->state;
      st.status = s;
      // A v2 link brings its own state (a resume or a SNAPSHOT).
      if (s.state == connection_state::connected && s.link != st.loaded_link
          && s.protocol.empty()) {
        st.loaded_link = s.link;
        load(self);
      }
    },
    [=](reload_atom) {
      auto& st = self->state;
      if (st.status.state != connection_state::connected)
        load(self);
      self->delayed_send(self, st.cfg.state_reload, reload_atom::value);
    },
  };
}

} // namespace

status_subscriber_actor spawn_state_loader(caf::actor_system& sys,
                                           const client_config& cfg,
                                           http_client_actor http,
                                           coordinator_actor coord,
                                           connection_impl conn) {
  return caf::actor_cast<status_subscriber_actor>(
    sys.spawn(state_loader, cfg, std::move(http), std::move(coord), std::move(conn)));
}

} // namespace kullsync

#include "kullsync/client/engine.hpp"

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "spawn.hpp"

namespace kullsync {

void client_engine::connect() const {
  caf::anon_send(connection, connect_atom::value);
}

void client_engine::disconnect() const {
  caf::anon_send(connection, disconnect_atom::value);
}

void client_engine::set_endpoint(std::string url) const {
  caf::anon_send(connection, endpoint_atom::value, std::move(url));
}

void client_engine::network_changed() const {
  caf::anon_send(connection, network_atom::value);
}

void client_engine::send_progress(msg::shoot_progress p, std::string id) const {
  auto m = msg::make_update_progress(std::move(p));
  if (!id.empty())
    m.id = std::move(id);
  caf::anon_send(connection, send_atom::value, std::move(m));
}

void client_engine::subscribe(state_subscriber_actor who) const {
  caf::anon_send(subscribers, subscribe_atom::value, std::move(who));
}

void client_engine::subscribe(status_subscriber_actor who) const {
  caf::anon_send(subscribers, subscribe_atom::value, std::move(who));
}

void client_engine::subscribe(msg::server_type type,
                              message_subscriber_actor who) const {
  caf::anon_send(subscribers, subscribe_atom::value, type, std::move(who));
}

void client_engine::unsubscribe(const caf::actor_addr& who) const {
  caf::anon_send(subscribers, unsub_atom::value, who);
}

void client_engine::load_state(msg::user_state s) const {
  caf::anon_send(coordinator, load_atom::value, std::move(s));
}

void client_engine::await_stop(caf::actor_system& sys) const {
  caf::scoped_actor self{sys};
  self->wait_for(connection, coordinator, subscribers);
}

void client_engine::stop() const {
  // The connection closes its link, then ends; linked, it takes policy,
  // keepalive, coordinator and subscribers with it.
  caf::anon_send(connection, stop_atom::value);
}

client_engine spawn_client(caf::actor_system& sys, const client_config& cfg,
                           dialer_actor transport, http_client_actor http,
                           token_provider_actor tokens) {
  return spawn_engine(sys, cfg, sim::stream_mutation::none, std::move(transport),
                      std::move(http), std::move(tokens));
}

client_engine spawn_engine(caf::actor_system& sys, const client_config& cfg,
                           sim::stream_mutation broken, dialer_actor transport,
                           http_client_actor http, token_provider_actor tokens) {
  auto clock = make_wall_clock(sys, cfg.wall_start_ms);
  client_engine e;
  // The engine's actors hold each other's whole protocols; the handles
  // given out are the public ones.
  auto subscribers = spawn_subscribers(sys);
  e.subscribers = caf::actor_cast<subscribers_actor>(subscribers);
  std::optional<saved_stream> saved;
  if (cfg.store)
    saved = cfg.store->load_stream();
  auto coordinator = spawn_coordinator(sys, cfg, broken, clock, subscribers, saved);
  e.coordinator = caf::actor_cast<coordinator_actor>(coordinator);
  e.connection = spawn_connection(sys, cfg, broken, clock, std::move(transport),
                                  caf::actor_cast<coordinator_link>(coordinator),
                                  std::move(saved), std::move(tokens));
  if (http)
    e.subscribe(spawn_state_loader(sys, cfg, std::move(http), e.coordinator,
                                   caf::actor_cast<connection_impl>(e.connection)));
  return e;
}

namespace {

struct callback_state {
  static inline const char* name = callback_actor_name;
};

/// An adapter: `Handle`'s protocol, and the flush the subscribers ask of it.
template <class Handle>
using adapter_actor = typename Handle::template extend_with<flushable_actor>;

template <class Handle, class F>
Handle spawn_adapter(caf::actor_system& sys, F handler) {
  using impl = adapter_actor<Handle>;
  auto a = sys.spawn([handler = std::move(handler)](
                       typename impl::template stateful_pointer<callback_state>)
                       -> typename impl::behavior_type {
    return {handler, [](flush_atom) { return true; }};
  });
  return caf::actor_cast<Handle>(a);
}

template <class Handle, class Atom, class T>
Handle make_callback(caf::actor_system& sys, std::function<void(const T&)> f) {
  return spawn_adapter<Handle>(sys, [f = std::move(f)](Atom, const T& x) { f(x); });
}

} // namespace

state_subscriber_actor
make_state_callback(caf::actor_system& sys,
                    std::function<void(const sync_state&)> f) {
  return make_callback<state_subscriber_actor, state_atom>(sys, std::move(f));
}

status_subscriber_actor
make_status_callback(caf::actor_system& sys,
                     std::function<void(const connection_status&)> f) {
  return make_callback<status_subscriber_actor, status_atom>(sys, std::move(f));
}

message_subscriber_actor
make_message_callback(caf::actor_system& sys,
                      std::function<void(const msg::server_message&)> f) {
  return spawn_adapter<message_subscriber_actor>(
    sys, [f = std::move(f)](inbound_atom, const inbound_batch& xs) {
      for (auto& x : xs)
        f(x);
    });
}

token_provider_actor make_token_provider(caf::actor_system& sys,
                                         std::function<std::string()> f) {
  return sys.spawn<caf::detached>(
    [f = std::move(f)]() -> token_provider_actor::behavior_type {
      return {
        [f](token_atom) -> caf::result<std::string> {
          try {
            auto t = f();
            if (!t.empty())
              return t;
          } catch (...) {
          }
          return caf::make_error(caf::sec::runtime_error, "no token from the provider");
        },
      };
    });
}

} // namespace kullsync

#pragma once

/// The client engine facade: one call spawns the whole client into a host's
/// actor system.
///
///     caf::actor_system_config cfg;
///     kullsync::add_client_types(cfg);
///     caf::actor_system sys{cfg};
///     auto engine = kullsync::spawn_client(sys, config, transport);
///     engine.subscribe(my_state_subscriber);
///     engine.connect();

#include <functional>
#include <string>

#include <caf/fwd.hpp>

#include "kullsync/client/config.hpp"
#include "kullsync/client/protocol.hpp"
#include "kullsync/transports/http_client.hpp"

namespace kullsync {

/// Typed handles to a running engine, and shorthands that message them.
class client_engine {
public:
  connection_actor connection;
  coordinator_actor coordinator;
  subscribers_actor subscribers;

  void connect() const;
  void disconnect() const;
  /// Switches to another endpoint (environment or URL): disconnects, then
  /// reconnects there when a link is wanted.
  void set_endpoint(std::string url) const;
  /// The network changed or the app came to the foreground: retry now.
  void network_changed() const;
  /// Sends UPDATE_PROGRESS; queued while offline. On a v2 link each message
  /// ends in one ACK or one NACK carrying its id, for subscribers of
  /// `server_type::ack` / `server_type::nack`: the server's (a NACK that
  /// says "retry later" is not an end: the engine sends it again), or the
  /// engine's own, `superseded` (a later update of the same shoot replaced
  /// it before it was sent), `outbox_full` (offline_queue_limit messages
  /// await their ACK), `invalid` (a bad `id`, or one already waiting) or
  /// `too_large` (its frame is over max_message_bytes: refused on v1 too).
  /// An answer repeated (to a resend) is passed on once. `id`: the app's own
  /// (1 to 64 characters of printable UTF-8, unique for this device, also
  /// across runs, and unlike the engine's own `<device>-<base 36>-<n>`), to
  /// follow the message by; empty: the engine numbers it. A v1 link
  /// acknowledges nothing: what it sends has no outcome.
  void send_progress(msg::shoot_progress p, std::string id = {}) const;
  void subscribe(state_subscriber_actor who) const;
  void subscribe(status_subscriber_actor who) const;
  /// `type == server_type::unknown` subscribes to every message.
  void subscribe(msg::server_type type, message_subscriber_actor who) const;
  void unsubscribe(const caf::actor_addr& who) const;
  /// Offers what the server remembers (GET /api/sync/state). While the
  /// socket is down it replaces shoots and credits; while connected it fills
  /// in only what the current link has not delivered itself. An engine
  /// spawned with an HTTP client loads it by itself.
  void load_state(msg::user_state s) const;
  /// Stops the engine: the link is closed with 1000 (status subscribers see
  /// "disconnected"), and once the server answered the close, or
  /// `stop_timeout` (2 s) passed, every actor of the engine ends (monitor
  /// `connection`, or await_stop()); the transport the engine owns ends
  /// with it.
  void stop() const;
  /// Blocks until the engine's connection, coordinator and subscribers have
  /// ended: after stop(), before the app destroys what its subscribers use.
  /// Callbacks made with make_*_callback and subscribed to this engine have
  /// all returned by then (the "disconnected" status among them), and none
  /// runs for it after; a callback still running 10 s after the stop is
  /// not waited for (logged: it may be waiting on this thread). Never from an actor's handler (it would block a CAF
  /// worker); without stop() first it waits for ever.
  void await_stop(caf::actor_system& sys) const;
};

/// Spawns subscribers, coordinator, connection (with its reconnect policy
/// and keepalive) over `transport`, which the engine then owns. With `http`
/// (e.g. spawn_http_client), the engine also loads what the server
/// remembers for the user (GET /api/sync/state, with the token the engine
/// dials with) at start (with a provider, once it gave a token), every `state_reload` while the socket is down, and
/// once after each reconnect of a v1 link (a v2 link brings its own state),
/// so that what was published while the device was away is not missing.
///
/// With `tokens`, each dial uses a token it provides (fetched again after
/// 4003 and ahead of the expiry, which a v2 link refreshes in band with
/// REFRESH); without, `cfg.connection.token`. A close the token caused stops
/// the engine, since dialing again with it cannot help: 4001 failed("no
/// token"), 4002 failed("invalid token"), and 4003 without a provider
/// failed("token expired") (with one, a new token is fetched and the link
/// resumes). connect() dials again, with a new token from the provider.
client_engine spawn_client(caf::actor_system& sys, const client_config& cfg,
                           dialer_actor transport, http_client_actor http = {},
                           token_provider_actor tokens = {});

/// A token provider calling `f` (which may block: it runs on its own
/// thread, e.g. a request to the app's auth backend). An exception or an
/// empty string is a failure.
token_provider_actor make_token_provider(caf::actor_system& sys,
                                         std::function<std::string()> f);

/// Adapters for code that is not an actor: each callback runs on a CAF
/// worker, one call at a time (two adapters' calls may run at once). An
/// engine's await_stop() returns after the last call it caused.
state_subscriber_actor
make_state_callback(caf::actor_system& sys,
                    std::function<void(const sync_state&)> f);
status_subscriber_actor
make_status_callback(caf::actor_system& sys,
                     std::function<void(const connection_status&)> f);
message_subscriber_actor
make_message_callback(caf::actor_system& sys,
                      std::function<void(const msg::server_message&)> f);

} // namespace kullsync

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/io_thread.hpp"
#include "limits.hpp"
#include "server_actors.hpp"

namespace kullsync::server {

namespace {

struct session_state {
  std::shared_ptr<const session_env> env;
  accepted_link_actor transport;
  identity who;
  bool v2 = false; // the client offered kull.v2
  bool joined = false;
  // Close once opened. Rare, so on the heap, and the logger is the env's:
  // a session's actor stays in jemalloc's 1,280-byte class (below).
  std::unique_ptr<refusal> refused;
  flow::credit_return credit;
  token_bucket bucket;           // client messages
  int64_t limit_window = -1;     // the second the refusals below are of
  uint64_t limited_in_window = 0;
  log_throttle limit_log;
  bool closing = false;          // we closed the link: frames still in are dropped
  uint64_t frames_in = 0;
  uint64_t ignored = 0;
  spdlog::logger& log() const { return *env->session_log; }
  static inline const char* name = "kullsync.session";
};

// Every socket has a session: with CAF 0.17.6's actor (1,032 bytes) a state
// of up to 248 bytes keeps it in jemalloc's 1,280-byte class; past it, the
// 1,536-byte class costs every socket 256 bytes more. Checked in every build
// (sanitized ones too, whose allocator does not round this way): a state
// that must grow moves something rare to the heap, as `refused` is.
static_assert(sizeof(session_state) <= 248, "a session's actor would take the next size class");

using session_ptr = session_actor::stateful_pointer<session_state>;

int64_t now_ms(session_ptr self) {
  return epoch_ms(self->home_system(), self->state.env->clock);
}

const hub_actor& my_hub(session_ptr self) {
  return hub_for(self->state.env->hubs, self->state.who.user_id);
}

void attach(session_ptr self) {
  auto& st = self->state;
  self->send(st.transport, attach_atom::value,
             caf::actor_cast<transport_listener_actor>(self), uint64_t{1},
             std::string{st.v2 ? v2_subprotocol : ""});
}

/// Where a v2 client resumes: `epoch` and `since` in the query. A `since`
/// that is not a position means no resume (the client gets a SNAPSHOT).
void read_resume(const std::string& target, join_request& req) {
  auto epoch = query_param(target, "epoch");
  auto since = query_param(target, "since");
  if (!epoch || !since || epoch->empty() || since->empty() || since->size() > 19
      || since->find_first_not_of("0123456789") != std::string::npos)
    return;
  req.epoch = std::move(*epoch);
  req.since = std::stoull(*since);
}

void send_control(session_ptr self, msg::server_type type, msg::server_body body) {
  self->send(self->state.transport, send_atom::value,
             msg::encode(msg::make_server_message(type, std::move(body), now_ms(self),
                                                  std::nullopt)));
}

void refuse(session_ptr self, std::optional<std::string> id, msg::nack_code code,
            std::string error) {
  send_control(self, msg::server_type::nack, msg::nack{id, code, std::move(error)});
}

void close_link(session_ptr self, uint16_t code, std::string reason) {
  self->state.closing = true;
  self->send(self->state.transport, close_atom::value, code, std::move(reason));
}

void count_refusal(server_counters& c, uint16_t code) {
  server_counters::add(code == close_code::no_token        ? c.refused_no_token
                       : code == close_code::token_expired ? c.refused_expired_token
                                                           : c.refused_invalid_token);
}

/// A token that expires is watched: unrefreshed, the socket is closed 4003.
void watch_expiry(session_ptr self) {
  auto& st = self->state;
  if (st.who.expires_at_ms)
    self->send(st.env->token_watch, watch_atom::value,
               caf::actor_cast<session_actor>(self), *st.who.expires_at_ms);
}

/// Whether an operator revoked the token of `who` (token_revoked).
bool revoked(session_ptr self, const identity& who) {
  return token_revoked(self->state.env->cfg, who, now_ms(self));
}

/// Closes the socket (4002) if its token is revoked now: when its user's
/// revocation changes, and once it is open (a revocation that came between
/// the check at connect and the join found no socket to tell).
void close_if_revoked(session_ptr self) {
  auto& st = self->state;
  if (!st.joined || st.closing || !revoked(self, st.who))
    return;
  st.log().info("device {} of user {}: token revoked: closed 4002", st.who.device_id,
               st.who.user_id);
  close_link(self, close_code::invalid_token, "Token revoked");
}

/// REFRESH: a new token for the same stream, else 4002; REFRESHED says
/// until when the socket may stay.
void refresh(session_ptr self, const std::string& token) {
  auto& st = self->state;
  auto r = st.env->cfg.auth->authenticate(
    auth_request{token, st.who.device_id, st.v2, now_ms(self)});
  // The socket's device is offered as the token's: a token bound to another
  // device (its `device` claim) does not refresh this one.
  if (r.who && revoked(self, *r.who)) {
    r.failure = {close_code::invalid_token, "Token revoked"};
    r.who.reset();
  }
  // The same stream and the same `sub` (an admin token's stream is the
  // admin feed's, whoever it is of).
  bool same_user = r.who && r.who->user_id == st.who.user_id
                   && r.who->subject() == st.who.subject();
  if (!same_user || r.who->device_id != st.who.device_id) {
    auto why = !r.who ? (r.failure.close_code == close_code::token_expired
                           ? std::string{"Invalid token: the new token has expired"}
                           : std::move(r.failure.reason))
               : !same_user ? std::string{"Invalid token: it names another user"}
               : std::string{"Invalid token: it is bound to another device"};
    count_refusal(*st.env->counters, close_code::invalid_token);
    st.log().info("device {} of user {}: refresh refused: {}", st.who.device_id,
                 st.who.user_id, why);
    return close_link(self, close_code::invalid_token, std::move(why));
  }
  st.who.expires_at_ms = r.who->expires_at_ms;
  server_counters::add(st.env->counters->refreshes);
  if (st.who.expires_at_ms)
    watch_expiry(self);
  else
    self->send(st.env->token_watch, unwatch_atom::value,
               caf::actor_cast<session_actor>(self));
  send_control(self, msg::server_type::refreshed, msg::refreshed{st.who.expires_at_ms});
}

/// The socket's rate limit: false if this message is refused. A second that
/// brings more refusals than the burst closes the socket with 4008.
bool within_rate(session_ptr self) {
  auto& st = self->state;
  if (st.env->cfg.limits.client_rate <= 0)
    return true;
  auto now = now_ms(self);
  if (st.bucket.take(now))
    return true;
  server_counters::add(st.env->counters->rate_limited_messages);
  if (now / 1000 != st.limit_window) {
    st.limit_window = now / 1000;
    st.limited_in_window = 0;
  }
  if (++st.limited_in_window > st.env->cfg.limits.client_burst) {
    server_counters::add(st.env->counters->rate_limited_closes);
    st.log().warn("device {} of user {} keeps flooding: closed 4008", st.who.device_id,
                 st.who.user_id);
    close_link(self, close_code::rate_limited, "Rate limited");
  } else if (st.limit_log.should_log(now)) {
    st.log().info("device {} of user {} is over {} messages/s: messages refused",
                 st.who.device_id, st.who.user_id, st.env->cfg.limits.client_rate);
  }
  return false;
}

/// Authenticates from the handshake's request and joins the user's hub, then
/// lets the transport complete the handshake: a client that sees its link
/// open is already registered. A refused socket is still opened, then closed
/// with its code, as the deployed server does.
/// What a log_budget held back since the last line, said with the next.
std::string held_back(uint64_t n, const char* what) {
  return n == 0 ? std::string{}
                : " (and " + std::to_string(n) + " more " + what + " not logged)";
}

void start(session_ptr self, const std::string& target,
           const header_list& headers, const std::string& peer) {
  auto& st = self->state;
  // The handshake's request is needed only for this: an idle session does
  // not keep it.
  st.v2 = offers_subprotocol(headers, v2_subprotocol);
  if (st.refused) // the acceptor's verdict (a limit of the peer's address)
    return attach(self);
  auth_request ar{extract_token(target, headers), query_param(target, "device"),
                  st.v2, now_ms(self)};
  auto r = st.env->cfg.auth->authenticate(ar);
  std::string whose; // a revoked token's holder is known (its signature held)
  if (r.who && revoked(self, *r.who)) {
    whose = " device " + r.who->device_id + " of user " + r.who->user_id + ":";
    r.failure = {close_code::invalid_token, "Token revoked"};
    r.who.reset();
  }
  if (!r.who) {
    count_refusal(*st.env->counters, r.failure.close_code);
    if (auto held = st.env->refusal_log.take(steady_ms()))
      st.log().info("{}:{} rejected socket: {} ({}){}", peer, whose, r.failure.reason,
                    r.failure.close_code, held_back(*held, "rejected sockets"));
    st.refused = std::make_unique<refusal>(r.failure.close_code, std::move(r.failure.reason));
    return attach(self);
  }
  st.who = std::move(*r.who);
  if (st.who.legacy) {
    server_counters::add(st.env->counters->legacy_tokens);
    if (auto held = st.env->legacy_log.take(steady_ms()))
      st.log().warn("{}: device {} of user {} uses an unsigned legacy token{}", peer,
                    st.who.device_id, st.who.user_id,
                    held_back(*held, "sockets on legacy tokens"));
  }
  join_request req;
  req.user = st.who.user_id;
  req.device = st.who.device_id;
  req.v2 = st.v2;
  req.expires_at = st.who.expires_at_ms;
  if (st.v2)
    read_resume(target, req);
  self
    ->request(my_hub(self), caf::infinite, join_atom::value, std::move(req),
              caf::actor_cast<session_actor>(self), link_actor{st.transport})
    .then(
      [=](bool joined) {
        auto& st = self->state;
        if (joined) {
          st.joined = true;
          server_counters::add(st.env->counters->connects);
          st.log().info("device {} of user {} connected from {}", st.who.device_id,
                       st.who.user_id, peer);
          watch_expiry(self);
        } else {
          st.refused = std::make_unique<refusal>(close_code::policy_violation,
                                                 "Too many connections");
        }
        attach(self);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.log().error("device {} of user {}: join failed: {}", st.who.device_id,
                      st.who.user_id, self->system().render(err));
        st.refused = std::make_unique<refusal>(close_code::internal_error, "Server error");
        attach(self);
      });
}

void on_opened(session_ptr self) {
  auto& st = self->state;
  if (st.refused)
    close_link(self, st.refused->first, std::move(st.refused->second));
  else
    close_if_revoked(self);
}

void on_frame(session_ptr self, const std::string& text) {
  auto& st = self->state;
  if (!st.joined || st.closing)
    return;
  ++st.frames_in;
  if (!within_rate(self)) {
    if (st.v2 && !st.closing)
      if (auto id = msg::client_frame_id(text, {}))
        refuse(self, std::move(id->id), msg::nack_code::rate_limited, "too many messages");
    return;
  }
  msg::decode_limits lim;
  lim.max_frame_bytes = SIZE_MAX; // the transport refuses larger frames (1009)
  lim.keep_raw_payload = true;
  lim.read_ids = st.v2; // ids are v2's: a v1 socket's message is read as the deployed server does
  auto m = msg::decode_client(text, lim);
  auto& counters = *st.env->counters;
  if (!m) {
    counters.message_in(4);
    ++st.ignored;
    st.log().debug("{}: unparseable frame ignored: {}", st.who.device_id,
                  m.error().detail);
    // A v2 client learns why a message with an id went nowhere (an id that
    // is itself invalid included: its sender would resend it for ever).
    if (st.v2)
      if (auto id = msg::client_frame_id(text, lim))
        refuse(self, std::move(id->id), msg::nack_code::invalid, m.error().detail);
    return;
  }
  counters.message_in(m->type == msg::client_type::ping              ? 0
                      : m->type == msg::client_type::update_progress ? 1
                      : m->type == msg::client_type::refresh         ? 2
                                                                     : 3);
  switch (m->type) {
    case msg::client_type::ping:
      self->send(st.transport, send_atom::value,
                 msg::encode(msg::make_pong(now_ms(self))));
      break;
    case msg::client_type::update_progress: {
      auto& shoot = std::get<msg::shoot_progress>(m->body).shoot_id;
      if (!msg::valid_id(shoot)) {
        server_counters::add(st.env->counters->invalid_ids);
        ++st.ignored;
        if (m->id)
          refuse(self, *m->id, msg::nack_code::invalid, "shootId is not a valid id");
        return;
      }
      auto out = msg::make_server_message(
        msg::server_type::shoot_progress,
        std::move(std::get<msg::shoot_progress>(m->body)), now_ms(self),
        st.who.device_id, st.who.user_id);
      if (m->id)
        self->send(my_hub(self), publish_atom::value, st.who.user_id, std::move(out),
                   std::move(m->raw_payload), std::move(*m->id), link_actor{st.transport},
                   int64_t{std::chrono::nanoseconds{
                     std::chrono::steady_clock::now().time_since_epoch()}.count()});
      else
        self->send(my_hub(self), publish_atom::value, st.who.user_id,
                   std::move(out), std::move(m->raw_payload));
      break;
    }
    case msg::client_type::refresh:
      if (st.v2) { // REFRESH is v2's: a v1 socket ignores it, as deployed
        refresh(self, std::get<msg::refresh>(m->body).token);
        break;
      }
      [[fallthrough]];
    default:
      ++st.ignored;
      st.log().debug("{}: {} ignored", st.who.device_id, m->type_name);
      if (m->id)
        refuse(self, *m->id, msg::nack_code::invalid,
               "a " + m->type_name + " message is not taken into the stream");
  }
}

session_actor::behavior_type session(session_ptr self,
                                     std::shared_ptr<const session_env> env,
                                     accepted_link_actor transport,
                                     std::string target, header_list headers,
                                     std::optional<refusal> refused, std::string peer) {
  auto& st = self->state;
  st.env = std::move(env);
  st.transport = std::move(transport);
  if (refused)
    st.refused = std::make_unique<refusal>(std::move(*refused));
  st.bucket = token_bucket{st.env->cfg.limits.client_rate, st.env->cfg.limits.client_burst};
  run_on_io_thread(self);
  start(self, target, headers, peer);
  return {
    [=](opened_atom, uint64_t, const std::string&) { on_opened(self); },
    [=](frame_atom, uint64_t tag, const frame_batch& frames) {
      for (auto& text : frames)
        on_frame(self, text);
      if (auto n = self->state.credit.handled(frames.size()))
        self->send(self->state.transport, credit_atom::value, tag, n);
    },
    [=](closed_atom, uint64_t, uint16_t code, const std::string& reason) {
      auto& st = self->state;
      st.env->counters->closed(code);
      if (st.joined) {
        st.log().info("device {} of user {} left ({} {}); {} frames in, {} ignored",
                     st.who.device_id, st.who.user_id, code, reason,
                     st.frames_in, st.ignored);
        self->send(my_hub(self), leave_atom::value,
                   caf::actor_cast<session_actor>(self));
        if (st.who.expires_at_ms)
          self->send(st.env->token_watch, unwatch_atom::value,
                     caf::actor_cast<session_actor>(self));
      }
      self->quit();
    },
    [=](close_atom, uint16_t code, std::string& reason) {
      close_link(self, code, std::move(reason));
    },
    [=](revoked_atom) { close_if_revoked(self); },
  };
}

} // namespace

session_actor spawn_session(caf::actor_system& sys,
                            std::shared_ptr<const session_env> env,
                            accepted_link_actor transport, std::string target,
                            header_list headers, std::optional<refusal> refused,
                            std::string peer) {
  return sys.spawn(session, std::move(env), std::move(transport),
                   std::move(target), std::move(headers), std::move(refused),
                   std::move(peer));
}

} // namespace kullsync::server

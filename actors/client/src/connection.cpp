#include <cassert>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/client/store.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/ws_url.hpp"
#include "kullsync/transports/close_code.hpp"
#include "kullsync/transports/subprotocol.hpp"
#include "connection_state.hpp"

namespace kullsync::conn {

namespace {

/// A URL the engine can dial: ws:// or wss://, a host, a port in range.
/// Anything else is the app's mistake, not a network fault to retry.
bool is_ws_url(const std::string& url) {
  return detail::parse_ws_url(url).has_value();
}

} // namespace

void publish(conn_ptr self, connection_status next) {
  auto& st = self->state;
  if (next == st.status)
    return;
  st.log->debug("{}: {} -> {} (attempt {}, link {})", st.who, to_string(st.status.state),
                to_string(next.state), next.attempt, next.link);
  st.status = std::move(next);
  self->send(st.coord, status_atom::value, st.status);
}

namespace {

/// Whether going from `from` to `to` ends the current link (or starts a
/// new one): then its late events, timers and pending answers are ignored.
/// Not when the token for this very link came (fetching_token -> dialing),
/// nor while the policy decides about the lost link (lost -> waiting_retry
/// keeps the epoch its timer carries; lost -> failed ends nothing).
bool drops_link(link_phase from, link_phase to) {
  switch (to) {
    case link_phase::idle:
    case link_phase::fetching_token:
    case link_phase::lost:
      return true;
    case link_phase::dialing:
      return from != link_phase::fetching_token;
    case link_phase::failed:
      return is_live(from);
    default:
      return false;
  }
}

void forget_link(conn_ptr self, link_phase from) {
  auto& st = self->state;
  ++st.epoch;
  if (is_live(from))
    self->send(st.keepalive, down_atom::value);
  if (is_ready(from) && !st.lost_at_ms) {
    st.lost_at_ms = now_ms(self);
    st.dials_since_lost = 0;
  }
  st.resend_pending = false;
  st.echoed_v2 = false;
  st.awaiting_pong = false;
  st.stream.closed();
}

} // namespace

void enter(conn_ptr self, link_phase next, connection_status shown) {
  auto& st = self->state;
  auto from = st.phase;
  assert(is_legal(from, next));
  st.log->debug("{}: link {}: {} -> {}", st.who, shown.link, to_string(from), to_string(next));
  st.phase = next;
  if (drops_link(from, next))
    forget_link(self, from);
  if (auto state = public_state(next)) {
    shown.state = *state;
    publish(self, std::move(shown));
  }
}

void close_link(conn_ptr self, uint16_t code, std::string reason) {
  auto& st = self->state;
  if (!is_live(st.phase))
    return;
  self->send(st.transport, close_atom::value, code, std::move(reason));
  enter(self, link_phase::lost, st.status);
}

void report_telemetry(conn_ptr self) {
  auto& st = self->state;
  if (!st.telemetry_changed)
    return;
  st.telemetry_changed = false;
  auto& t = st.telemetry;
  auto& s = st.stream.status();
  t.replayed = s.replayed;
  t.resumes = s.resumes;
  t.snapshots = s.resyncs;
  t.gaps = s.gaps;
  t.duplicates = s.duplicates;
  t.queue_depth = s.outbox;
  t.queue_dropped = s.outbox_dropped;
  self->send(st.coord, status_atom::value, t);
}

/// Tells the coordinator how the stream goes, when that changed.
void report_stream(conn_ptr self) {
  auto& st = self->state;
  if (st.stream.status() == st.reported)
    return report_telemetry(self);
  st.reported = st.stream.status();
  st.telemetry_changed = true;
  report_telemetry(self);
  self->send(st.coord, status_atom::value, st.reported);
}

int64_t now_ms(conn_ptr self) {
  return epoch_ms(self->home_system(), self->state.clock);
}

/// v2: checks for unacknowledged messages one ack_timeout from now.
void arm_resend(conn_ptr self) {
  auto& st = self->state;
  if (st.resend_pending || !st.stream.v2() || st.stream.status().outbox == 0)
    return;
  st.resend_pending = true;
  self->delayed_send(self, st.cfg.connection.ack_timeout, resend_atom::value, st.epoch);
}

void save_outbox(conn_ptr self) {
  auto& st = self->state;
  if (st.store)
    st.store->save_outbox(st.stream.outbox());
}

/// The token a dial (or a request on the user's behalf) carries now: the
/// provider's latest, else the configured one. Empty: none yet.
std::string current_token(conn_ptr self) {
  auto& st = self->state;
  return st.tokens ? st.token : st.cfg.connection.effective_token();
}

void send_connect(conn_ptr self) {
  auto& st = self->state;
  auto token = current_token(self);
  auto req = make_dial_request(st.cfg.connection, st.url, token,
                               st.stream.resume_query());
  self->send(st.transport, connect_atom::value,
             caf::actor_cast<transport_listener_actor>(self), st.status.link,
             std::move(req.target), std::move(req.headers));
}

void dial(conn_ptr self, uint32_t attempt) {
  auto& st = self->state;
  close_link(self, close_code::normal, "redialing");
  auto next = st.status;
  next.attempt = attempt;
  next.retry_in = caf::timespan{0};
  next.url = st.url;
  next.link = st.status.link + 1;
  bool token_first = needs_token(self);
  enter(self, token_first ? link_phase::fetching_token : link_phase::dialing, next);
  st.credit.reset();
  ++st.telemetry.dials;
  ++st.dials_since_lost;
  st.telemetry_changed = true;
  if (!token_first)
    return send_connect(self);
  // The link waits for a fresh token; a newer dial or a disconnect overtakes it.
  auto epoch = st.epoch;
  self->request(st.tokens, std::chrono::seconds{30}, token_atom::value)
    .then(
      [=](std::string& token) {
        auto& st = self->state;
        if (epoch != st.epoch)
          return;
        st.token = std::move(token);
        st.token_stale = false;
        st.token_refused = false;
        st.expires_at.reset();
        st.expires_local.reset();
        enter(self, link_phase::dialing, st.status);
        send_connect(self);
      },
      [=](const caf::error& err) {
        if (epoch == self->state.epoch)
          lost(self, "no token: " + self->system().render(err));
      });
}

/// The link is gone: ask the policy what next, unless nobody wants a link.
void lost(conn_ptr self, std::string reason, uint16_t close) {
  auto& st = self->state;
  if (st.phase != link_phase::lost) // a link we closed is lost already
    enter(self, link_phase::lost, st.status);
  if (!st.wanted) // defensive: a link nobody wants is closed before it is lost
    return enter(self, link_phase::idle, st.status);
  st.log->info("{}: link {} lost: {}", st.who, st.status.link, reason);
  auto epoch = st.epoch;
  self->request(st.policy, caf::infinite, lost_atom::value, close)
    .then([=](const retry_decision& d) {
      auto& st = self->state;
      if (epoch != st.epoch || !st.wanted)
        return; // overtaken by a disconnect, a new endpoint or a retry
      auto next = st.status;
      next.error = reason;
      if (d.give_up) {
        next.error = "Max reconnection attempts reached";
        st.log->warn("{}: giving up after {} attempts", st.who, d.attempt);
        return enter(self, link_phase::failed, std::move(next));
      }
      next.attempt = d.attempt;
      next.retry_in = d.delay;
      self->delayed_send(self, d.delay, retry_atom::value, epoch);
      enter(self, link_phase::waiting_retry, std::move(next));
    });
}

void send_frame(conn_ptr self, const msg::client_message& m) {
  auto& st = self->state;
  if (m.type == msg::client_type::ping)
    st.awaiting_pong = true;
  self->send(st.transport, send_atom::value, msg::encode(m));
}

/// The link can carry the stream: v2 once its WELCOME came, else v1. Only
/// now is it `connected`, so that nobody syncs on a link still deciding.
void ready(conn_ptr self, bool v2) {
  auto& st = self->state;
  auto next = st.status; // attempt: the dial that made it
  next.retry_in = caf::timespan{0};
  next.protocol = v2 ? std::string{v2_subprotocol} : std::string{};
  enter(self, v2 ? link_phase::ready_v2 : link_phase::ready_v1, std::move(next));
  self->delayed_send(self, st.cfg.reconnect.stable_after, healthy_atom::value,
                     st.epoch);
  auto& t = st.telemetry;
  ++t.connects;
  if (st.lost_at_ms) {
    ++t.reconnects;
    t.time_to_live.observe(now_ms(self) - *st.lost_at_ms);
    t.attempts.observe(st.dials_since_lost);
    st.lost_at_ms.reset();
  }
  st.telemetry_changed = true;
  report_telemetry(self);
  // A v1 server accepts and then checks the token: what v1 sends is gone
  // once sent, so the outbox waits for the server's first frame (its
  // DEVICE_CONNECTED for this device).
  st.v1_unconfirmed = !v2;
  if (v2)
    flush_outbox(self, true);
}

void flush_outbox(conn_ptr self, bool v2) {
  auto& st = self->state;
  auto resent = st.stream.opened(v2, now_ms(self));
  for (auto& m : resent)
    send_frame(self, m);
  if (!resent.empty()) {
    save_outbox(self); // a v1 link takes them off the outbox
    report_stream(self);
  }
  arm_resend(self);
}

bool takes_stream_messages(conn_ptr self) {
  return is_ready(self->state.phase) && !self->state.v1_unconfirmed;
}

void on_opened(conn_ptr self, const std::string& protocol) {
  auto& st = self->state;
  self->send(st.keepalive, up_atom::value, st.status.link);
  if (protocol != v2_subprotocol)
    return ready(self, false);
  // A v2 server's first frame is WELCOME (opens_v2_link); none for a
  // while means a v1 server that echoed the offer.
  st.echoed_v2 = true;
  enter(self, link_phase::awaiting_welcome, st.status);
  self->delayed_send(self, st.cfg.connection.welcome_timeout, welcome_atom::value,
                     st.epoch);
}

/// Redials at once and resumes from the position: the stream lost
/// something. Once per stable link; a link that keeps breaking goes to the
/// reconnect policy.
void resume_now(conn_ptr self, std::string reason, uint16_t close) {
  auto& st = self->state;
  if (st.resumed_at_once || !st.wanted)
    return lost(self, std::move(reason), close);
  st.log->info("{}: link {}: {}; resuming at once", st.who, st.status.link, reason);
  st.resumed_at_once = true;
  dial(self, st.status.attempt);
}

/// Closes the link (with 1000) and wants none: idle, no retry.
void disconnect(conn_ptr self, std::string why) {
  auto& st = self->state;
  st.wanted = false;
  close_link(self, close_code::normal, std::move(why));
  auto next = st.status;
  next.attempt = 0;
  next.retry_in = caf::timespan{0};
  next.error.clear();
  st.lost_at_ms.reset(); // a chosen disconnect is not a loss
  enter(self, link_phase::idle, std::move(next));
}

bool is_current(conn_ptr self, uint64_t link) {
  return is_live(self->state.phase) && link == self->state.status.link;
}

connection_impl::behavior_type connection(conn_ptr self, client_config cfg,
                                           sim::stream_mutation broken,
                                           wall_clock clock,
                                           dialer_actor transport,
                                           coordinator_link coord,
                                           std::optional<saved_stream> saved,
                                           token_provider_actor tokens) {
  auto& st = self->state;
  st.store = cfg.store;
  st.tokens = std::move(tokens);
  st.stream = stream_link{cfg.connection.offline_queue_limit,
                          make_message_id_prefix(cfg.connection.device_id,
                                                 epoch_ms(self->home_system(), clock)),
                          broken};
  st.stream.limit_message_bytes(cfg.connection.max_message_bytes);
  if (saved)
    st.stream.restore(*saved);
  if (st.store)
    if (auto o = st.store->load_outbox())
      st.stream.restore(*o);
  st.reported = st.stream.status();
  st.url = cfg.connection.url;
  st.status.url = st.url;
  st.clock = clock;
  st.transport = std::move(transport);
  st.coord = std::move(coord);
  auto& sys = self->home_system();
  st.policy = spawn_reconnect_policy(sys, cfg.reconnect);
  st.keepalive = spawn_keepalive(sys, cfg.keepalive, clock,
                                 caf::actor_cast<connection_impl>(self));
  st.cfg = std::move(cfg);
  st.who = st.cfg.connection.user_id + "/" + st.cfg.connection.device_id;
  self->link_to(st.policy);
  self->link_to(st.keepalive);
  self->link_to(st.coord);
  return {
    [=](connect_atom) {
      auto& st = self->state;
      if (st.stopping)
        return; // stop() is final
      st.wanted = true;
      if (!is_ws_url(st.url)) {
        // Said once, as failed: dialing it again cannot help.
        auto why = "invalid URL '" + detail::redacted_url(st.url)
                   + "': expected ws:// or wss://HOST[:PORT 1-65535]";
        st.log->error("{}: not dialing: {}", st.who, why);
        auto next = st.status;
        next.url = st.url;
        next.error = std::move(why);
        if (st.phase == link_phase::idle)
          enter(self, link_phase::failed, std::move(next));
        return;
      }
      if (st.token_refused && !st.tokens) {
        // The contract: "do not retry with the same token"; without a
        // provider there is no other one.
        st.log->error("{}: not dialing: the server refused this engine's token, and it has no "
                      "token provider to get another", st.who);
        return;
      }
      switch (st.phase) {
        case link_phase::idle:
        case link_phase::failed:
          self->send(st.policy, reset_atom::value);
          dial(self, 0);
          break;
        case link_phase::waiting_retry:
          dial(self, st.status.attempt);
          break;
        default: // dialing or connected already, or the policy decides
          break;
      }
    },
    [=](disconnect_atom) { disconnect(self, "client disconnect"); },
    [=](stop_atom) {
      // Closed as disconnect() closes, then ended once the server answered
      // the close (or stop_timeout passed): the linked actors end with it.
      auto& st = self->state;
      if (st.stopping)
        return;
      // A dial under way or an open link answers the close; none (waiting
      // for a token, a retry, or idle) has nothing to close.
      bool open = st.phase == link_phase::dialing || is_open(st.phase);
      st.stopping = st.status.link;
      disconnect(self, "client stopped");
      if (!open)
        return self->quit(caf::exit_reason::user_shutdown);
      self->delayed_send(self, st.cfg.connection.stop_timeout, ended_atom::value);
    },
    [=](ended_atom) { self->quit(caf::exit_reason::user_shutdown); },
    [=](endpoint_atom, std::string& url) {
      auto& st = self->state;
      if (st.stopping)
        return;
      if (!is_ws_url(url)) {
        st.log->error("{}: endpoint '{}' ignored: not a ws:// or wss:// URL", st.who,
                      detail::redacted_url(url));
        return;
      }
      st.url = std::move(url);
      if (!st.wanted) {
        auto next = st.status;
        next.url = st.url;
        publish(self, next);
        return;
      }
      st.token_refused = false; // another server judges the token afresh
      self->send(st.policy, reset_atom::value);
      dial(self, 0);
    },
    [=](network_atom) {
      auto& st = self->state;
      self->send(st.policy, reset_atom::value);
      if (st.wanted && !st.token_refused && is_ws_url(st.url)
          && (st.phase == link_phase::waiting_retry || st.phase == link_phase::failed))
        dial(self, 0);
    },
    [=](send_atom, msg::client_message& m) {
      auto& st = self->state;
      if (m.type != msg::client_type::update_progress) {
        if (is_open(st.phase)) // PINGs and the like are for the link they were made for
          send_frame(self, m);
        return;
      }
      bool now = takes_stream_messages(self);
      if (auto out = st.stream.submit(std::move(m), now, now_ms(self)))
        send_frame(self, *out);
      arm_resend(self);
      if (auto refused = st.stream.take_outcomes(); !refused.empty()) {
        for (auto& r : refused) {
          auto& n = std::get<msg::nack>(r.body);
          // A replaced update is what the offline queue is for: not news.
          st.log->log(n.code == msg::nack_code::superseded ? spdlog::level::debug
                                                           : spdlog::level::warn,
                      "message {} not sent: {} ({})", n.id.value_or("(no id)"),
                      to_string(n.code), n.error);
        }
        self->send(st.coord, outcome_atom::value, std::move(refused));
      }
      if (st.stream.v2() || !now)
        save_outbox(self);
      report_stream(self);
    },
    [=](get_atom) { return self->state.status; },
    [=](get_atom, token_atom) { return current_token(self); },
    [=](get_atom, telemetry_atom) {
      self->state.telemetry_changed = true; // fill in the stream's counters
      report_telemetry(self);
      return self->state.telemetry;
    },
    [=](opened_atom, uint64_t link, const std::string& protocol) {
      auto& st = self->state;
      if (!is_current(self, link))
        return;
      if (st.phase != link_phase::dialing) { // a transport that says it twice
        st.log->warn("{}: link {}: opened again ({}): ignored", st.who, link, to_string(st.phase));
        return;
      }
      on_opened(self, protocol);
    },
    [=](frame_atom, uint64_t link, const frame_batch& frames) {
      if (is_current(self, link))
        on_frames(self, frames);
    },
    [=](closed_atom, uint64_t link, uint16_t code, const std::string& reason) {
      if (self->state.stopping == link)
        return self->quit(caf::exit_reason::user_shutdown);
      if (!is_current(self, link))
        return;
      auto why = "closed " + std::to_string(code) + (reason.empty() ? "" : ": " + reason);
      if (code == close_code::stream_interrupted)
        return resume_now(self, std::move(why), code);
      if (code == close_code::token_expired && self->state.tokens) {
        self->state.token_stale = true; // the next dial gets a new one
        return resume_now(self, std::move(why));
      }
      if (code == close_code::no_token || code == close_code::invalid_token
          || code == close_code::token_expired)
        return refused(self, code, std::move(why));
      lost(self, std::move(why), code);
    },
    [=](resend_atom, uint64_t epoch) {
      auto& st = self->state;
      if (epoch != st.epoch)
        return;
      st.resend_pending = false;
      auto now = now_ms(self);
      auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
                       st.cfg.connection.ack_timeout).count();
      for (auto& m : st.stream.overdue(now - timeout, now))
        send_frame(self, m);
      arm_resend(self);
    },
    [=](refresh_atom, uint64_t epoch) {
      if (epoch == self->state.epoch && is_open(self->state.phase))
        refresh(self);
    },
    [=](welcome_atom, uint64_t epoch) {
      auto& st = self->state;
      if (epoch != st.epoch || st.phase != link_phase::awaiting_welcome)
        return;
      // Neither a v2 server (its first frame is WELCOME) nor a v1 one (its
      // first is the device's DEVICE_CONNECTED). Taking it for v1 would send
      // the outbox without ids to what may be a slow v2 server, which would
      // apply again what it applied before: a broken link instead.
      close_link(self, close_code::normal, "no WELCOME");
      lost(self, "no WELCOME within the welcome timeout after the server echoed "
                   + std::string{v2_subprotocol});
    },
    [=](retry_atom, uint64_t epoch) {
      auto& st = self->state;
      if (epoch == st.epoch && st.phase == link_phase::waiting_retry)
        dial(self, st.status.attempt);
    },
    [=](healthy_atom, uint64_t epoch) {
      auto& st = self->state;
      if (epoch == st.epoch && is_ready(st.phase)) {
        st.resumed_at_once = false;
        self->send(st.policy, reset_atom::value);
      }
    },
    [=](dead_atom, uint64_t link) {
      if (!is_current(self, link))
        return;
      close_link(self, close_code::keepalive_timeout, "keepalive timeout");
      lost(self, "no answer to PING");
    },
  };
}

} // namespace kullsync::conn

namespace kullsync {

connection_actor spawn_connection(caf::actor_system& sys,
                                  const client_config& cfg,
                                  sim::stream_mutation broken, wall_clock clock,
                                  dialer_actor transport,
                                  coordinator_link coord,
                                  std::optional<saved_stream> saved,
                                  token_provider_actor tokens) {
  return caf::actor_cast<connection_actor>(
    sys.spawn(conn::connection, cfg, broken, clock, std::move(transport), std::move(coord),
              std::move(saved), std::move(tokens)));
}

} // namespace kullsync

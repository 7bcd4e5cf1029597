#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "spawn.hpp"

namespace kullsync {

std::string query_escape(const std::string& in) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~'
        || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

namespace {

bool is_ws_url(const std::string& url) {
  return url.rfind("ws://", 0) == 0 || url.rfind("wss://", 0) == 0;
}

struct connection_actor_state {
  client_config cfg;
  wall_clock clock;
  transport_actor transport;
  coordinator_actor coord;
  reconnect_policy_actor policy;
  keepalive_actor keepalive;
  connection_status status;
  std::string url;
  bool wanted = false;     // the user asked to be connected
  bool live = false;       // link `status.link` may still report events
  uint64_t epoch = 0;      // invalidates timers and pending policy answers
  bool awaiting_pong = false;
  flow::credit_return credit; // frames of the current link handled
  std::vector<msg::client_message> offline; // latest UPDATE_PROGRESS per shoot
  std::shared_ptr<spdlog::logger> log = log::get("client.connection");
  static inline const char* name = "kullsync.connection";
};

using conn_ptr = connection_impl::stateful_pointer<connection_actor_state>;

void publish(conn_ptr self, connection_status next) {
  auto& st = self->state;
  if (next == st.status)
    return;
  st.log->debug("{} -> {} (attempt {}, link {})", to_string(st.status.state),
                to_string(next.state), next.attempt, next.link);
  st.status = std::move(next);
  self->send(st.coord, status_atom::value, st.status);
}

void drop_link(conn_ptr self) {
  auto& st = self->state;
  ++st.epoch;
  if (st.live) {
    st.live = false;
    self->send(st.keepalive, down_atom::value);
  }
  st.awaiting_pong = false;
}

void dial(conn_ptr self, uint32_t attempt) {
  auto& st = self->state;
  if (st.live)
    self->send(st.transport, close_atom::value, close_code::normal,
               std::string{"redialing"});
  drop_link(self);
  auto next = st.status;
  next.state = connection_state::connecting;
  next.attempt = attempt;
  next.retry_in = caf::timespan{0};
  next.url = st.url;
  next.link = st.status.link + 1;
  publish(self, next);
  st.live = true;
  st.credit.reset();
  auto& cc = st.cfg.connection;
  auto target = st.url;
  header_list headers;
  if (cc.token_in_header)
    headers.emplace_back("Authorization", "Bearer " + cc.effective_token());
  else
    target += (target.find('?') == std::string::npos ? "?token=" : "&token=")
              + query_escape(cc.effective_token());
  self->send(st.transport, connect_atom::value,
             caf::actor_cast<transport_listener_actor>(self), st.status.link,
             std::move(target), std::move(headers));
}

/// The link is gone: ask the policy what next, unless nobody wants a link.
void lost(conn_ptr self, std::string reason) {
  auto& st = self->state;
  drop_link(self);
  if (!st.wanted)
    return;
  st.log->info("link {} lost: {}", st.status.link, reason);
  auto epoch = st.epoch;
  self->request(st.policy, caf::infinite, lost_atom::value)
    .then([=](const retry_decision& d) {
      auto& st = self->state;
      if (epoch != st.epoch || !st.wanted)
        return; // overtaken by a disconnect, a new endpoint or a retry
      auto next = st.status;
      next.error = reason;
      if (d.give_up) {
        next.state = connection_state::failed;
        next.error = "Max reconnection attempts reached";
        st.log->warn("giving up after {} attempts", d.attempt);
      } else {
        next.state = connection_state::reconnecting;
        next.attempt = d.attempt;
        next.retry_in = d.delay;
        self->delayed_send(self, d.delay, retry_atom::value, epoch);
      }
      publish(self, std::move(next));
    });
}

void send_frame(conn_ptr self, const msg::client_message& m) {
  auto& st = self->state;
  if (m.type == msg::client_type::ping)
    st.awaiting_pong = true;
  self->send(st.transport, send_atom::value, msg::encode(m));
}

void enqueue_offline(conn_ptr self, msg::client_message m) {
  auto& q = self->state.offline;
  auto& id = std::get<msg::shoot_progress>(m.body).shoot_id;
  for (auto i = q.begin(); i != q.end(); ++i)
    if (std::get<msg::shoot_progress>(i->body).shoot_id == id) {
      q.erase(i);
      break;
    }
  if (q.size() >= self->state.cfg.connection.offline_queue_limit) {
    self->state.log->warn("offline queue full: dropping progress of shoot {}",
                          std::get<msg::shoot_progress>(q.front().body).shoot_id);
    q.erase(q.begin());
  }
  q.push_back(std::move(m));
}

void on_opened(conn_ptr self) {
  auto& st = self->state;
  auto next = st.status;
  next.state = connection_state::connected; // attempt: the dial that made it
  next.retry_in = caf::timespan{0};
  publish(self, next);
  self->send(st.keepalive, up_atom::value, st.status.link);
  self->delayed_send(self, st.cfg.reconnect.stable_after, healthy_atom::value,
                     st.epoch);
  for (auto& m : st.offline)
    send_frame(self, m);
  st.offline.clear();
}

/// Decodes one frame into `out`; a bad frame is counted and skipped.
void decode_frame(conn_ptr self, const std::string& text, inbound_batch& out) {
  auto& st = self->state;
  // Decoded in place: a message is a few hundred bytes of strings.
  auto& m = out.emplace_back();
  if (auto err = msg::decode_server_into(text, m, st.cfg.connection.limits)) {
    out.pop_back();
    st.log->debug("bad frame ignored: {}", err->detail);
    self->send(st.coord, bad_frame_atom::value);
  }
}

void heard(conn_ptr self) {
  auto& st = self->state;
  if (st.awaiting_pong) {
    st.awaiting_pong = false;
    self->send(st.keepalive, heard_atom::value, st.status.link);
  }
}

void on_frames(conn_ptr self, const frame_batch& frames) {
  auto& st = self->state;
  heard(self);
  inbound_batch out;
  out.reserve(frames.size());
  for (auto& text : frames)
    decode_frame(self, text, out);
  if (!out.empty())
    self->send(st.coord, inbound_atom::value, std::move(out));
  if (auto n = st.credit.handled(frames.size()))
    self->send(st.transport, credit_atom::value, st.status.link, n);
}

bool is_current(conn_ptr self, uint64_t link) {
  return self->state.live && link == self->state.status.link;
}

connection_impl::behavior_type connection(conn_ptr self, client_config cfg,
                                           wall_clock clock,
                                           transport_actor transport,
                                           coordinator_actor coord) {
  auto& st = self->state;
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
  self->link_to(st.policy);
  self->link_to(st.keepalive);
  self->link_to(st.coord);
  return {
    [=](connect_atom) {
      auto& st = self->state;
      st.wanted = true;
      switch (st.status.state) {
        case connection_state::disconnected:
        case connection_state::failed:
          self->send(st.policy, reset_atom::value);
          dial(self, 0);
          break;
        case connection_state::reconnecting:
          dial(self, st.status.attempt);
          break;
        default:
          break;
      }
    },
    [=](disconnect_atom) {
      auto& st = self->state;
      st.wanted = false;
      if (st.live)
        self->send(st.transport, close_atom::value, close_code::normal,
                   std::string{"client disconnect"});
      drop_link(self);
      auto next = st.status;
      next.state = connection_state::disconnected;
      next.attempt = 0;
      next.retry_in = caf::timespan{0};
      next.error.clear();
      publish(self, next);
    },
    [=](endpoint_atom, std::string& url) {
      auto& st = self->state;
      if (!is_ws_url(url)) {
        st.log->error("endpoint '{}' ignored: not a ws:// or wss:// URL", url);
        return;
      }
      st.url = std::move(url);
      if (!st.wanted) {
        auto next = st.status;
        next.url = st.url;
        publish(self, next);
        return;
      }
      self->send(st.policy, reset_atom::value);
      dial(self, 0);
    },
    [=](network_atom) {
      auto& st = self->state;
      self->send(st.policy, reset_atom::value);
      if (st.wanted && (st.status.state == connection_state::reconnecting
                        || st.status.state == connection_state::failed))
        dial(self, 0);
    },
    [=](send_atom, msg::client_message& m) {
      auto& st = self->state;
      if (st.status.state == connection_state::connected)
        send_frame(self, m);
      else if (m.type == msg::client_type::update_progress)
        enqueue_offline(self, std::move(m));
    },
    [=](get_atom) { return self->state.status; },
    [=](opened_atom, uint64_t link, const std::string&) {
      if (is_current(self, link))
        on_opened(self);
    },
    [=](frame_atom, uint64_t link, const frame_batch& frames) {
      if (is_current(self, link))
        on_frames(self, frames);
    },
    [=](closed_atom, uint64_t link, uint16_t code, const std::string& reason) {
      if (is_current(self, link))
        lost(self, "closed " + std::to_string(code)
                     + (reason.empty() ? "" : ": " + reason));
    },
    [=](retry_atom, uint64_t epoch) {
      auto& st = self->state;
      if (epoch == st.epoch && st.status.state == connection_state::reconnecting)
        dial(self, st.status.attempt);
    },
    [=](healthy_atom, uint64_t epoch) {
      auto& st = self->state;
      if (epoch == st.epoch && st.status.state == connection_state::connected)
        self->send(st.policy, reset_atom::value);
    },
    [=](dead_atom, uint64_t link) {
      auto& st = self->state;
      if (!is_current(self, link))
        return;
      self->send(st.transport, close_atom::value, close_code::keepalive_timeout,
                 std::string{"keepalive timeout"});
      lost(self, "no answer to PING");
    },
  };
}

} // namespace

connection_actor spawn_connection(caf::actor_system& sys,
                                  const client_config& cfg, wall_clock clock,
                                  transport_actor transport,
                                  coordinator_actor coord) {
  return caf::actor_cast<connection_actor>(
    sys.spawn(connection, cfg, clock, std::move(transport), std::move(coord)));
}

} // namespace kullsync

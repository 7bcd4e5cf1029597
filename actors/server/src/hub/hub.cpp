// A hub shard: the actor. Its messages are wired to the steps of its other
// files (hub_state.hpp lists them). See hub_actor in hub_protocol.hpp.
#include <algorithm>
#include <functional>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/io_thread.hpp"

namespace kullsync::server {

int64_t now_ms(hub_ptr self) {
  return epoch_ms(self->home_system(), self->state.clock);
}

void answer_join(hub_ptr self, const caf::actor_addr& session) {
  auto& joining = self->state.joining;
  if (joining.empty()) // a node alone, or every head at hand
    return;
  auto i = joining.find(session);
  if (i == joining.end())
    return;
  i->second.deliver(true);
  joining.erase(i);
}

void send_frame(hub_ptr self, device_socket& s, const shared_frame& f) {
  if (s.start || s.closing)
    return; // its WELCOME will cover this, or it is going
  if (s.holding) {
    s.held.push_back(f);
    return;
  }
  // A frame is a shared_ptr: a typed send per socket copies only that.
  self->send(s.socket, send_atom::value, f);
  ++self->state.stats.frames_out;
}

void send_all(hub_ptr self, user_entry& u, const shared_frame& f,
              const device_socket* except) {
  for (auto& s : u.sockets)
    if (&s != except)
      send_frame(self, s, f);
}

/// DEVICE_CONNECTED / DEVICE_DISCONNECTED as the deployed server sends them:
/// the device is named in `data` and as the envelope's `deviceId`. Presence
/// carries no position, so v1 and v2 sockets share the frame.
shared_frame device_frame(msg::server_type type, const std::string& user,
                          const std::string& device, int64_t ts) {
  msg::device_connection d;
  d.device_id = device;
  d.timestamp = ts;
  return make_shared_frame(
    msg::encode(msg::make_server_message(type, std::move(d), ts, device, user)));
}

shared_frame control_frame(hub_ptr self, msg::server_type type, msg::server_body body) {
  return make_shared_frame(msg::encode(
    msg::make_server_message(type, std::move(body), now_ms(self), std::nullopt)));
}

void close_socket(hub_ptr self, device_socket& s, uint16_t code, const char* reason) {
  s.closing = true;
  answer_join(self, s.session.address()); // a socket not started yet opens, then closes
  self->send(s.session, close_atom::value, code, std::string{reason});
}

void close_joined(hub_ptr self, const std::string& user, const caf::actor_addr& who,
                  uint16_t code, const char* reason) {
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return;
  for (auto& s : i->second.sockets)
    if (s.session.address() == who && !s.closing)
      close_socket(self, s, code, reason);
}

void erase_user(hub_ptr self, decltype(hub_state::users)::iterator i) {
  auto& st = self->state;
  // forget_if_done erases only a user whose stream was dropped (drop_stream).
  st.users.erase(i);
  if (st.counters)
    st.counters->users_now.fetch_sub(1, std::memory_order_relaxed);
  st.stats.users = st.users.size();
}

void forget_if_done(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return;
  auto& u = i->second;
  if (u.sockets.empty() && !u.stream && u.presence.announced.empty()
      && u.presence.in_flight == 0)
    erase_user(self, i);
}

namespace {

/// Every so often: the followed streams' positions are checked (when
/// deliveries may be lost), failed announcements retried, the broker told
/// this node is alive and what expired forgotten.
void sweep(hub_ptr self) {
  auto& st = self->state;
  auto now = now_ms(self);
  check_positions(self, now);
  retry_failed_announcements(self);
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(
    st.cfg.cluster.position_check);
  st.broker->tick(now, period);
  // Often enough for the history's lifetime, and for a node's liveness.
  auto next = std::clamp<int64_t>(std::min<int64_t>(st.cfg.history.ttl_ms, period.count()) / 4,
                                  250, 60000);
  self->delayed_send(self, std::chrono::milliseconds{next}, sweep_atom::value);
}

hub_stats stats(hub_ptr self) {
  auto s = self->state.stats;
  auto b = self->state.broker->stats();
  s.history_entries = b.entries;
  s.history_bytes = b.history_bytes;
  s.history_evicted = b.evicted;
  s.state_bytes += b.state_bytes;
  s.shoots_evicted = b.fields_evicted;
  s.users_forgotten = b.users_forgotten;
  s.acks_waiting = self->state.acks.size();
  for (auto& [user, u] : self->state.users)
    if (u.stream)
      s.shoots_evicted += u.stream->state.evicted();
  return s;
}

hub_impl::behavior_type hub(hub_ptr self, server_config cfg, wall_clock clock,
                            std::string node_epoch,
                            std::shared_ptr<server_counters> counters) {
  auto& st = self->state;
  st.counters = std::move(counters);
  st.cfg = std::move(cfg);
  st.clock = clock;
  st.broker = st.cfg.cluster.broker ? make_actor_broker(self, st.cfg.cluster.broker)
                                    : make_local_broker(self, node_epoch);
  run_on_io_thread(self);
  self->set_down_handler([=](const caf::down_msg& dm) {
    if (!self->state.broker->broker_down(dm.source))
      leave(self, dm.source);
  });
  sweep(self);
  return {
    [=](join_atom, const join_request& req, session_actor who,
        link_actor socket) -> caf::result<bool> {
      auto& st = self->state;
      auto outcome = join(self, req, who, std::move(socket));
      if (outcome == join_outcome::refused)
        return false;
      std::optional<caf::typed_response_promise<bool>> later;
      if (outcome == join_outcome::waiting) { // answered when it starts
        later = self->make_response_promise<bool>();
        st.joining.emplace(who.address(), *later);
      }
      // It came while the others close (a stop, or an operator's drain):
      // closed like them, and counted as told.
      if (st.draining)
        close_joined(self, req.user, who.address(), st.draining->first,
                     st.draining->second.c_str());
      else if (st.shedding)
        close_joined(self, req.user, who.address(), close_code::going_away,
                     "server draining");
      if (later)
        return *later;
      return true;
    },
    [=](leave_atom, const session_actor& who) {
      self->demonitor(who.address());
      leave(self, who.address());
    },
    [=](publish_atom, const std::string& user, const msg::server_message& m,
        const std::string& data_json) { publish(self, user, m, data_json, {}, {}, {}); },
    [=](publish_atom, const std::string& user, const msg::server_message& m,
        const std::string& data_json, const std::string& id,
        const link_actor& ack_to, int64_t received_ns) {
      publish(
        self, user, m, data_json, client_dedup_key(m.device_id.value_or(""), id),
        [=](const publish_receipt& r) {
          ack_when_applied(self, user, pending_ack{id, 0, ack_to, received_ns}, r);
        },
        [=](const caf::error& e) { refuse_unstored(self, id, ack_to, e); });
    },
    [=](trigger_atom, const std::string& user, const msg::server_message& m,
        const std::string& key) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      publish(
        self, user, m, {},
        key.empty() ? std::string{} : backend_dedup_key(msg::to_string(m.type), key),
        [rp](const publish_receipt& r) mutable { rp.deliver(r.seq); },
        [rp](const caf::error& e) mutable { rp.deliver(e); });
      return rp;
    },
    [=](deliver_atom, const message_ptr& m) { on_message(self, m); },
    [=](published_atom, uint64_t ticket, publish_receipt& r) {
      self->state.broker->answer(ticket, std::move(r));
    },
    [=](published_atom, uint64_t ticket, caf::error& e) {
      self->state.broker->answer(ticket, std::move(e));
    },
    [=](resync_atom) { resync(self); },
    [=](refollow_atom, const std::string& user, uint64_t gen, bool fresh) {
      refollow(self, user, gen, fresh);
    },
    [=](sweep_atom) { sweep(self); },
    [=](redrain_atom) {
      self->state.redrain_pending = false;
      retry_failed_announcements(self);
      check_drained(self);
    },
    [=](shutdown_atom, uint16_t code, const std::string& reason) -> caf::result<bool> {
      auto& st = self->state;
      st.draining.emplace(code, reason);
      for (auto& [user, u] : st.users)
        for (auto& s : u.sockets)
          self->send(s.session, close_atom::value, code, reason);
      auto rp = self->make_response_promise<bool>();
      st.drain_waiters.push_back(rp);
      check_drained(self); // nothing to wait for, perhaps
      return rp;
    },
    [=](snapshot_atom, const std::string& user) { return user_snapshot(self, user); },
    [=](stats_atom) { return stats(self); },
    [=](head_atom, const std::string& user) -> caf::result<stream_head> {
      auto rp = self->make_response_promise<stream_head>();
      self->state.broker->head(user, [rp](caf::expected<stream_head> h) mutable {
        if (h)
          rp.deliver(std::move(*h));
        else
          rp.deliver(std::move(h.error()));
      });
      return rp;
    },
    [=](read_atom, const std::string& user, const std::string& epoch, uint64_t since,
        uint64_t upto) -> caf::result<stream_range> {
      auto rp = self->make_response_promise<stream_range>();
      self->state.broker->read(user, epoch, since, upto,
                               [rp](caf::expected<stream_range> r) mutable {
                                 if (r)
                                   rp.deliver(std::move(*r));
                                 else
                                   rp.deliver(std::move(r.error()));
                               });
      return rp;
    },
    [=](close_atom, const std::string& user, const std::string& device, uint16_t code,
        const std::string& reason) { return close_sockets(self, user, device, code, reason); },
    [=](revoke_atom, const revocation& r) { return revoke(self, r); },
    [=](revoked_atom, const std::string& user) { recheck_tokens(self, user); },
    [=](drain_atom, uint32_t quota) { return drain_some(self, quota); },
    [=](undrain_atom) { self->state.shedding = false; },
  };
}

} // namespace

hub_actor spawn_hub(caf::actor_system& sys, const server_config& cfg,
                    wall_clock clock, std::string node_epoch,
                    std::shared_ptr<server_counters> counters) {
  return caf::actor_cast<hub_actor>(
    sys.spawn(hub, cfg, clock, std::move(node_epoch), std::move(counters)));
}

size_t hub_index(const std::string& user, size_t shards) {
  return std::hash<std::string>{}(user) % shards;
}

const hub_actor& hub_for(const std::vector<hub_actor>& hubs,
                         const std::string& user) {
  return hubs[hub_index(user, hubs.size())];
}

} // namespace kullsync::server

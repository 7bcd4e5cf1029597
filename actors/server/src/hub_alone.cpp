// A hub shard of a node alone: it numbers each user's stream itself, in its
// in-memory history, and answers resent client ids from its own memory.
// (In a cluster the broker does both: hub_cluster.cpp.)
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

/// Remembers, numbers (if the type is) and sends `m` to every device of
/// `user`, each broadcast serialised at most once per protocol version.
/// Returns the position, 0 for a type that is not numbered.
uint64_t alone_publish(hub_ptr self, const std::string& user, const msg::server_message& m,
                 const std::string& data_json) {
  auto& st = self->state;
  auto& u = st.users[user];
  remember(self, u, user, m);
  enforce_memory(self);
  uint64_t seq = 0;
  shared_frame v2;
  if (msg::is_numbered(m.type)) {
    // Numbering and storing are one step: no device sees a position that
    // is not in the history.
    v2 = st.history->append(user, now_ms(self), [&](uint64_t n) {
      seq = n;
      return encode_for(m, data_json, n);
    });
  }
  shared_frame v1;
  for (auto& s : u.sockets) {
    if (s.v2 && v2.text) {
      send_frame(self, s, v2);
    } else {
      if (!v1.text)
        v1 = encode_for(m, data_json, std::nullopt);
      send_frame(self, s, v1);
    }
  }
  forget_if_empty(self, user);
  return seq;
}

/// A v2 socket's start on a node alone: WELCOME, then what it missed (all
/// of it) or a SNAPSHOT, all before anything published later.
void alone_welcome(hub_ptr self, const join_request& req, user_entry& u,
                   device_socket& me) {
  auto& st = self->state;
  auto now = now_ms(self);
  std::optional<std::vector<shared_frame>> missed;
  if (!req.epoch.empty() && req.since)
    missed = st.history->read_after(req.user, req.epoch, *req.since, now);
  if (missed && missed->size() > st.cfg.history.max_replay) {
    st.log->debug("device {} of user {} is {} messages behind: a snapshot instead",
                  req.device, req.user, missed->size());
    missed.reset();
  }
  welcome(self, req, u, me, st.history->epoch(req.user, now),
          st.history->top(req.user, now), missed.has_value());
  if (missed) {
    ++st.stats.resumes_recovered;
    st.stats.replayed += missed->size();
    for (auto& f : *missed)
      send_frame(self, me, f);
  }
}

/// A v2 client message with an id: applied once, acknowledged each time.
void alone_publish_acked(hub_ptr self, const std::string& user, const msg::server_message& m,
                   const std::string& data_json, const std::string& id,
                   const transport_actor& ack_to, int64_t received_ns) {
  auto& st = self->state;
  auto key = client_ids::key(user, id);
  auto seq = st.ids->find(key);
  if (seq) {
    ++st.stats.duplicates;
  } else {
    seq = alone_publish(self, user, m, data_json);
    st.ids->remember(std::move(key), *seq, now_ms(self));
  }
  ack(self, id, *seq, ack_to, received_ns);
}

uint64_t alone_trigger(hub_ptr self, const std::string& user, const msg::server_message& m,
                 const std::string& idempotency_key) {
  auto& st = self->state;
  if (idempotency_key.empty())
    return alone_publish(self, user, m, {});
  auto key = client_ids::key(user, "http:" + idempotency_key);
  if (auto seq = st.ids->find(key)) {
    ++st.stats.duplicates;
    return *seq;
  }
  auto seq = alone_publish(self, user, m, {});
  st.ids->remember(std::move(key), seq, now_ms(self));
  return seq;
}

} // namespace kullsync::server

#include <algorithm>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/client/store.hpp"
#include "kullsync/common/shoot_table.hpp"
#include "kullsync/log.hpp"
#include "spawn.hpp"

namespace kullsync {

namespace {

struct coordinator_state {
  sync_state data; // without its shoots, which `shoots` keeps
  shoot_table shoots;
  caf::timespan linger{};
  size_t max_admin = 50;
  bool ignore_snapshot = false; // sim::stream_mutation::ignore_snapshot
  std::string snapshot_epoch;   // of the last WELCOME
  wall_clock clock;
  subscribers_impl subs;
  // What the current link has told us: a baseline loaded while connected
  // must not overwrite it (the socket is fresher than any HTTP answer).
  bool credits_from_link = false;
  std::set<std::string> shoots_from_link;
  bool dirty = false;
  bool flush_pending = false;
  std::shared_ptr<client_store> store;
  caf::timespan save_every{};
  bool unsaved = false; // the stream moved since the last save
  bool save_pending = false;
  static inline const char* name = "kullsync.coordinator";
};

using coord_ptr = coordinator_impl::stateful_pointer<coordinator_state>;

/// The state as the UI sees it.
sync_state snapshot(coord_ptr self) {
  auto s = self->state.data;
  s.shoots = self->state.shoots.shoots();
  return s;
}

void changed(coord_ptr self) {
  auto& st = self->state;
  st.dirty = true;
  if (!st.flush_pending) {
    st.flush_pending = true;
    self->send(self, flush_atom::value);
  }
}

void flush(coord_ptr self) {
  auto& st = self->state;
  st.flush_pending = false;
  if (!st.dirty)
    return;
  st.dirty = false;
  ++st.data.version;
  self->send(st.subs, publish_atom::value, snapshot(self));
}

void apply_shoot(coord_ptr self, const msg::shoot_progress& p, int64_t at = 0) {
  auto& st = self->state;
  if (auto v = st.shoots.put(p, at))
    self->delayed_send(self, st.linger, expire_atom::value, p.shoot_id, *v);
}

/// The stream moved: saved within `save_every`, with the state it is at.
void moved(coord_ptr self) {
  auto& st = self->state;
  if (!st.store)
    return;
  st.unsaved = true;
  if (!st.save_pending) {
    st.save_pending = true;
    self->delayed_send(self, st.save_every, save_atom::value);
  }
}

void save(coord_ptr self) {
  auto& st = self->state;
  st.save_pending = false;
  if (!st.unsaved || st.data.stream.epoch.empty())
    return;
  st.unsaved = false;
  saved_stream x;
  x.epoch = st.data.stream.epoch;
  x.seq = st.data.stream.seq;
  x.state.seq = x.seq;
  x.state.credits = st.data.last_credit;
  if (!x.state.credits && st.data.credits) {
    x.state.credits.emplace();
    x.state.credits->new_balance = *st.data.credits;
  }
  for (auto& kv : st.shoots.shoots())
    x.state.shoots.push_back(kv.second);
  st.store->save_stream(x);
}

/// SNAPSHOT: the server's state for the user replaces ours.
void replace(coord_ptr self, const msg::user_state& s) {
  auto& st = self->state;
  st.shoots.clear();
  for (auto& p : s.shoots)
    apply_shoot(self, p);
  st.data.credits.reset();
  st.data.last_credit = s.credits;
  if (s.credits)
    st.data.credits = s.credits->new_balance;
  st.data.devices = s.devices;
  st.data.stream.epoch = st.snapshot_epoch;
  st.data.stream.seq = s.seq.value_or(0);
  st.credits_from_link = true;
  st.shoots_from_link.clear();
  for (auto& kv : st.shoots.shoots())
    st.shoots_from_link.insert(kv.first);
  moved(self);
}

void apply_device(coord_ptr self, const msg::device_connection& d,
                  bool connected) {
  auto& devs = self->state.data.devices;
  auto i = std::find_if(devs.begin(), devs.end(), [&](auto& x) {
    return x.device_id == d.device_id;
  });
  if (connected) {
    if (i == devs.end())
      devs.push_back(d);
    else
      *i = d;
  } else if (i != devs.end()) {
    devs.erase(i);
  }
}

/// Applies one message to the state; BATCH applies its parts in order.
void apply_message(coord_ptr self, const msg::server_message& m) {
  auto& st = self->state;
  using msg::server_type;
  if (msg::holds_position(m)) {
    // The connection passes the stream on in order, without duplicates.
    st.data.stream.seq = *m.seq;
    moved(self);
  }
  switch (m.type) {
    case server_type::shoot_progress: {
      auto& p = std::get<msg::shoot_progress>(m.body);
      st.shoots_from_link.insert(p.shoot_id);
      apply_shoot(self, p, m.timestamp);
      break;
    }
    case server_type::credit_update: {
      auto& c = std::get<msg::credit_update>(m.body);
      st.credits_from_link = true;
      st.data.credits = c.new_balance;
      st.data.last_credit = c;
      break;
    }
    case server_type::prompt_change:
      st.data.last_prompt = std::get<msg::prompt_change>(m.body);
      break;
    case server_type::device_connected:
    case server_type::device_disconnected:
      apply_device(self, std::get<msg::device_connection>(m.body),
                   m.type == server_type::device_connected);
      break;
    case server_type::admin_session_update: {
      auto& xs = st.data.admin_updates;
      xs.push_back(std::get<msg::admin_session_update>(m.body));
      if (xs.size() > st.max_admin)
        xs.erase(xs.begin(), xs.begin() + (xs.size() - st.max_admin));
      break;
    }
    case server_type::provider_health:
      st.data.providers = std::get<msg::provider_health>(m.body);
      break;
    case server_type::pong:
    case server_type::ack:
    case server_type::nack:
    case server_type::refreshed:
      break; // the connection's business
    case server_type::welcome: {
      // The epoch goes with a seq: a SNAPSHOT's comes with it (replace).
      auto& w = std::get<msg::welcome>(m.body);
      st.snapshot_epoch = w.epoch;
      st.data.devices = w.devices;
      break;
    }
    case server_type::snapshot:
      if (!st.ignore_snapshot)
        replace(self, std::get<msg::user_state>(m.body));
      else {
        st.data.stream.epoch = st.snapshot_epoch;
        st.data.stream.seq = std::get<msg::user_state>(m.body).seq.value_or(0);
      }
      break;
    case server_type::batch:
      for (auto& inner : std::get<msg::batch>(m.body).messages)
        apply_message(self, inner);
      break;
    case server_type::unknown:
      ++st.data.unknown_messages;
      log::get("client.coordinator")->debug("unknown message type '{}' ignored",
                                            m.type_name);
      break;
  }
}

/// Replaces each BATCH by its parts, recursively, keeping the order.
void unpack(inbound_batch& in, inbound_batch& out) {
  for (auto& m : in) {
    if (m.type == msg::server_type::batch)
      unpack(std::get<msg::batch>(m.body).messages, out);
    else
      out.push_back(std::move(m));
  }
}

/// Takes what the server remembers. Down, it replaces our shoots and
/// credits. Connected, only what the current link has not told us yet: a
/// state fetched right after a reconnect fills the gap of the downtime
/// without undoing an update the socket delivered meanwhile.
void load(coord_ptr self, const msg::user_state& s) {
  auto& st = self->state;
  bool live = st.data.connection.state == connection_state::connected;
  std::vector<std::string> gone;
  for (auto& kv : st.shoots.shoots())
    if (!live || st.shoots_from_link.count(kv.first) == 0)
      gone.push_back(kv.first);
  for (auto& id : gone)
    st.shoots.erase(id);
  for (auto& p : s.shoots)
    if (!live || st.shoots_from_link.count(p.shoot_id) == 0)
      apply_shoot(self, p);
  if (s.credits && !(live && st.credits_from_link))
    st.data.credits = s.credits->new_balance;
  changed(self);
}

/// Starts where a run before saved the stream.
void restore(coord_ptr self, const saved_stream& x) {
  auto& st = self->state;
  for (auto& p : x.state.shoots)
    apply_shoot(self, p);
  st.data.last_credit = x.state.credits;
  if (x.state.credits)
    st.data.credits = x.state.credits->new_balance;
  st.data.stream.epoch = x.epoch;
  st.data.stream.seq = x.seq;
}

coordinator_impl::behavior_type coordinator(coord_ptr self, client_config cfg,
                                             sim::stream_mutation broken,
                                             wall_clock clock,
                                             subscribers_impl subs,
                                             std::optional<saved_stream> saved) {
  auto& st = self->state;
  st.linger = cfg.shoot_linger;
  st.max_admin = cfg.max_admin_updates;
  st.store = cfg.store;
  st.save_every = cfg.save_every;
  st.ignore_snapshot = broken == sim::stream_mutation::ignore_snapshot;
  st.clock = clock;
  st.subs = std::move(subs);
  self->link_to(st.subs);
  // The engine stops (its connection ends, linked) or the host ends it: the
  // position applied since the last save is saved now, else a restarted app
  // would resume before it and see those messages again.
  self->set_exit_handler([=](const caf::exit_msg& m) {
    save(self);
    self->quit(m.reason);
  });
  if (saved)
    restore(self, *saved);
  return {
    [=](inbound_atom, inbound_batch& in) {
      auto& st = self->state;
      st.data.last_sync_ms = epoch_ms(self->home_system(), st.clock);
      bool batches = false;
      for (auto& m : in) {
        apply_message(self, m);
        batches |= m.type == msg::server_type::batch;
      }
      // Subscribers get a BATCH's parts, not the envelope.
      if (batches) {
        inbound_batch parts;
        unpack(in, parts);
        in.swap(parts);
      }
      self->send(st.subs, publish_atom::value, std::move(in));
      changed(self);
    },
    [=](outcome_atom, inbound_batch& in) {
      self->send(self->state.subs, publish_atom::value, std::move(in));
    },
    [=](status_atom, connection_status& s) {
      auto& st = self->state;
      // Devices are known only through a live link: a new link starts afresh.
      if (s.state != connection_state::connected)
        st.data.devices.clear();
      if (s.state == connection_state::connected
          && (st.data.connection.state != connection_state::connected
              || st.data.connection.link != s.link)) {
        st.credits_from_link = false;
        st.shoots_from_link.clear();
      }
      st.data.connection = s;
      self->send(st.subs, publish_atom::value, std::move(s));
      changed(self);
    },
    [=](status_atom, const stream_status& s) {
      // Its counters; the position is the one of what was applied here.
      auto& mine = self->state.data.stream;
      auto epoch = std::move(mine.epoch);
      auto seq = mine.seq;
      mine = s;
      mine.epoch = std::move(epoch);
      mine.seq = seq;
      changed(self);
    },
    [=](status_atom, client_telemetry& t) {
      self->state.data.telemetry = std::move(t);
      changed(self);
    },
    [=](bad_frame_atom) {
      ++self->state.data.bad_frames;
      changed(self);
    },
    [=](expire_atom, const std::string& id, uint64_t version) {
      if (self->state.shoots.expire(id, version))
        changed(self);
    },
    [=](load_atom, const msg::user_state& s) { load(self, s); },
    [=](flush_atom) { flush(self); },
    [=](save_atom) { save(self); },
    [=](get_atom) { return snapshot(self); },
  };
}

} // namespace

coordinator_impl spawn_coordinator(caf::actor_system& sys,
                                    const client_config& cfg,
                                    sim::stream_mutation broken, wall_clock clock,
                                    subscribers_impl subs,
                                    std::optional<saved_stream> saved) {
  return caf::actor_cast<coordinator_impl>(
    sys.spawn(coordinator, cfg, broken, clock, std::move(subs), std::move(saved)));
}

} // namespace kullsync

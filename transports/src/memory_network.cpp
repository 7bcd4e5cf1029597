#include "kullsync/transports/memory_network.hpp"

#include <map>
#include <random>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "url.hpp"

namespace kullsync {

namespace {

using time_point = caf::actor_clock::time_point;

struct end_state {
  transport_actor end;
  transport_listener_actor listener;
  uint64_t tag = 0;
  bool attached = false;
  std::vector<std::string> pending; // frames that arrived before attach
  time_point busy_until{};          // keeps this direction in order
};

struct link {
  uint64_t id = 0;
  end_state client;
  end_state server;
  bool half_open = false;
  end_state& side(bool client_side) { return client_side ? client : server; }
};

/// Frames per message to a listener: enough to spread a mailbox round over
/// many frames, few enough that a batch stays in cache and a burst reaches
/// the listener's own consumers early.
constexpr size_t max_batch = 128;

/// Frames on their way to one listener, handed over as one message.
struct outgoing {
  transport_listener_actor listener;
  uint64_t tag = 0;
  frame_batch frames;
};

struct network_state {
  std::map<uint64_t, link> links;
  // Frames delivered since the last flush, in order. The flush is queued
  // behind whatever is in the mailbox: a burst goes out as one batch per
  // listener, a lone frame at once.
  std::vector<outgoing> outbox;
  bool flush_pending = false;
  std::map<caf::actor_addr, std::pair<uint64_t, bool>> ends; // -> link, client?
  std::map<std::string, acceptor_actor> acceptors;
  link_faults faults;
  bool refuse = false;
  std::mt19937_64 rng;
  network_stats stats;
  network_tracer_actor tracer;
  uint64_t next_id = 1;
  static inline const char* name = "kullsync.memory_network";
};

using network_ptr = memory_network_actor::stateful_pointer<network_state>;

void trace(network_ptr self, std::string line) {
  if (self->state.tracer)
    self->send(self->state.tracer, trace_atom::value, std::move(line));
}

std::string endpoint_key(const detail::url_parts& u) {
  return (u.tls ? "wss://" : "ws://") + u.host + ":" + u.port + u.path;
}

std::optional<std::string> endpoint_key(const std::string& url) {
  if (auto u = detail::parse_ws_url(url))
    return endpoint_key(*u);
  return std::nullopt;
}

link* find_link(network_ptr self, const caf::actor_addr& end, bool& client) {
  auto i = self->state.ends.find(end);
  if (i == self->state.ends.end())
    return nullptr;
  client = i->second.second;
  auto j = self->state.links.find(i->second.first);
  return j == self->state.links.end() ? nullptr : &j->second;
}

void forget(network_ptr self, link& l) {
  self->state.ends.erase(l.client.end.address());
  if (l.server.end)
    self->state.ends.erase(l.server.end.address());
  self->state.links.erase(l.id);
  self->state.stats.open_links = self->state.links.size();
}

/// How long a frame sent now in this direction takes, keeping order.
caf::timespan latency(network_ptr self, end_state& to) {
  auto& f = self->state.faults;
  if (f.min_delay.count() == 0 && f.max_delay.count() <= 0
      && to.busy_until == time_point{})
    return caf::timespan{0}; // never delayed: no need to read the clock
  auto d = f.min_delay;
  if (f.max_delay > f.min_delay) {
    std::uniform_int_distribution<int64_t> dist{f.min_delay.count(),
                                                f.max_delay.count()};
    d = caf::timespan{dist(self->state.rng)};
  }
  auto now = self->clock().now();
  auto at = std::max(now + d, to.busy_until);
  to.busy_until = at;
  return at - now;
}

/// Sends every frame in the outbox. Runs before anything else is sent to a
/// listener, so opened/closed never overtake frames.
void flush(network_ptr self) {
  auto& st = self->state;
  for (auto& o : st.outbox) {
    if (o.frames.size() == 1)
      self->send(o.listener, frame_atom::value, o.tag, std::move(o.frames.front()));
    else
      self->send(o.listener, frame_atom::value, o.tag, std::move(o.frames));
  }
  st.outbox.clear();
}

void hand_over(network_ptr self, end_state& to, std::string text) {
  auto& st = self->state;
  ++st.stats.frames_delivered;
  if (!to.attached) {
    to.pending.emplace_back(std::move(text));
    return;
  }
  if (st.outbox.empty() || st.outbox.back().listener != to.listener
      || st.outbox.back().tag != to.tag
      || st.outbox.back().frames.size() == max_batch)
    st.outbox.push_back(outgoing{to.listener, to.tag, {}});
  st.outbox.back().frames.emplace_back(std::move(text));
  if (!st.flush_pending) {
    st.flush_pending = true;
    self->send(self, flush_atom::value);
  }
}

void notify_closed(network_ptr self, end_state& x, uint16_t code,
                   const std::string& reason) {
  flush(self);
  if (x.listener)
    self->send(x.listener, closed_atom::value, x.tag, code, reason);
}

/// Ends a link from one side: the closer hears at once, the peer after the
/// frames already in flight (or never, on a half-open link).
void close_from(network_ptr self, link& l, bool client_side, uint16_t code,
                std::string reason) {
  auto& me = l.side(client_side);
  auto& peer = l.side(!client_side);
  trace(self, "close " + std::to_string(l.id) + (client_side ? " client " : " server ")
                + std::to_string(code));
  notify_closed(self, me, code, reason);
  if (!l.half_open && peer.listener) {
    auto delay = latency(self, peer);
    flush(self);
    if (delay.count() == 0)
      notify_closed(self, peer, code, reason);
    else
      self->delayed_send(peer.listener, delay, closed_atom::value, peer.tag,
                         code, reason);
  }
  forget(self, l);
}

void dial(network_ptr self, transport_actor end,
          transport_listener_actor listener, uint64_t tag,
          const std::string& url, header_list headers) {
  auto& st = self->state;
  ++st.stats.dials;
  bool client = false;
  if (auto* old = find_link(self, end.address(), client))
    close_from(self, *old, client, close_code::normal, "replaced");
  auto parts = detail::parse_ws_url(url);
  auto acc = parts ? st.acceptors.find(endpoint_key(*parts)) : st.acceptors.end();
  if (st.refuse || acc == st.acceptors.end()) {
    ++st.stats.refused;
    trace(self, "refuse " + url);
    self->send(listener, closed_atom::value, tag, close_code::abnormal,
               std::string{parts ? "connection refused" : "invalid URL"});
    return;
  }
  link l;
  l.id = st.next_id++;
  l.client.end = end;
  l.client.listener = listener;
  l.client.tag = tag;
  l.client.attached = true;
  l.server.end = spawn_memory_transport(self->home_system(),
                                        caf::actor_cast<memory_network_actor>(self));
  st.ends[end.address()] = {l.id, true};
  st.ends[l.server.end.address()] = {l.id, false};
  trace(self, "open " + std::to_string(l.id));
  // The client learns of the completed handshake when the server attaches
  // (as a real server answers the upgrade), before any server frame.
  self->send(acc->second, accept_atom::value, l.server.end, parts->target,
             std::move(headers));
  st.links.emplace(l.id, std::move(l));
  st.stats.open_links = st.links.size();
}

void attach(network_ptr self, const transport_actor& end,
            transport_listener_actor listener, uint64_t tag) {
  bool client = false;
  auto* l = find_link(self, end.address(), client);
  if (l == nullptr) {
    // The peer left before this side attached.
    self->send(listener, closed_atom::value, tag, close_code::abnormal,
               std::string{"connection reset"});
    return;
  }
  auto& me = l->side(client);
  me.listener = std::move(listener);
  me.tag = tag;
  me.attached = true;
  flush(self);
  if (!client)
    self->send(l->client.listener, opened_atom::value, l->client.tag);
  self->send(me.listener, opened_atom::value, tag);
  for (auto& text : me.pending)
    self->send(me.listener, frame_atom::value, tag, std::move(text));
  me.pending.clear();
}

/// Frames one end sent, in order: each may be lost or delayed on its own.
void send_frames(network_ptr self, const transport_actor& end, frame_batch& frames) {
  auto& st = self->state;
  bool client = false;
  auto* l = find_link(self, end.address(), client);
  if (l == nullptr || l->half_open) {
    st.stats.frames_dropped += frames.size();
    return;
  }
  auto& peer = l->side(!client);
  for (auto& text : frames) {
    if (st.faults.drop_rate > 0) {
      std::bernoulli_distribution lose{st.faults.drop_rate};
      if (lose(st.rng)) {
        ++st.stats.frames_dropped;
        continue;
      }
    }
    auto delay = latency(self, peer);
    if (delay.count() == 0)
      hand_over(self, peer, std::move(text));
    else
      self->delayed_send(self, delay, deliver_atom::value, l->id, !client,
                         std::move(text));
  }
}

void cut(network_ptr self, cut_mode mode) {
  auto& st = self->state;
  if (mode == cut_mode::half_open) {
    for (auto& kv : st.links)
      kv.second.half_open = true;
    trace(self, "cut half_open " + std::to_string(st.links.size()));
    return;
  }
  trace(self, "cut clean " + std::to_string(st.links.size()));
  auto links = std::move(st.links);
  st.links.clear();
  st.ends.clear();
  st.stats.open_links = 0;
  for (auto& kv : links) {
    notify_closed(self, kv.second.client, close_code::abnormal, "connection reset");
    notify_closed(self, kv.second.server, close_code::abnormal, "connection reset");
  }
}

memory_network_actor::behavior_type network(network_ptr self, uint64_t seed,
                                            network_tracer_actor tracer) {
  self->state.rng.seed(seed);
  self->state.tracer = std::move(tracer);
  return {
    [=](dial_atom, transport_actor end, transport_listener_actor listener,
        uint64_t tag, const std::string& url, header_list headers) {
      dial(self, std::move(end), std::move(listener), tag, url,
           std::move(headers));
    },
    [=](attach_atom, const transport_actor& end,
        transport_listener_actor listener, uint64_t tag) {
      attach(self, end, std::move(listener), tag);
    },
    [=](send_atom, const transport_actor& end, frame_batch& frames) {
      send_frames(self, end, frames);
    },
    [=](close_atom, const transport_actor& end, uint16_t code,
        std::string& reason) {
      bool client = false;
      if (auto* l = find_link(self, end.address(), client))
        close_from(self, *l, client, code, std::move(reason));
    },
    [=](listen_atom, const std::string& url, acceptor_actor acc) {
      if (auto key = endpoint_key(url))
        self->state.acceptors[*key] = std::move(acc);
    },
    [=](unlisten_atom, const std::string& url) {
      if (auto key = endpoint_key(url))
        self->state.acceptors.erase(*key);
    },
    [=](faults_atom, link_faults f) { self->state.faults = f; },
    [=](refuse_atom, bool on) { self->state.refuse = on; },
    [=](cut_atom, cut_mode mode) { cut(self, mode); },
    [=](stats_atom) { return self->state.stats; },
    [=](flush_atom) {
      self->state.flush_pending = false;
      flush(self);
    },
    [=](deliver_atom, uint64_t id, bool to_client, std::string& text) {
      auto i = self->state.links.find(id);
      if (i == self->state.links.end() || i->second.half_open) {
        ++self->state.stats.frames_dropped;
        return;
      }
      hand_over(self, i->second.side(to_client), std::move(text));
    },
  };
}

// -- ends ---------------------------------------------------------------------

/// Frames a transport end sent since its last flush; they reach the network
/// as one message, ahead of anything else the end sends.
struct end_state_t {
  frame_batch outbox;
  static inline const char* name = "kullsync.memory_transport";
};

/// The end's own protocol: a transport, plus the flush it queues to itself.
using end_actor = transport_actor::extend<caf::reacts_to<flush_atom>>;
using end_ptr = end_actor::stateful_pointer<end_state_t>;

void flush_end(end_ptr self, const memory_network_actor& net) {
  auto& out = self->state.outbox;
  if (out.empty())
    return;
  self->send(net, send_atom::value, caf::actor_cast<transport_actor>(self),
             std::move(out));
  out.clear();
}

void queue_frame(end_ptr self, const memory_network_actor& net, std::string text) {
  auto& out = self->state.outbox;
  out.push_back(std::move(text));
  if (out.size() == max_batch)
    flush_end(self, net);
  else if (out.size() == 1)
    self->send(self, flush_atom::value);
}

end_actor::behavior_type end(end_ptr self, memory_network_actor net) {
  auto me = [self] { return caf::actor_cast<transport_actor>(self); };
  return {
    [=](connect_atom, transport_listener_actor listener, uint64_t tag,
        std::string& url, header_list& headers) {
      flush_end(self, net);
      self->send(net, dial_atom::value, me(), std::move(listener), tag,
                 std::move(url), std::move(headers));
    },
    [=](attach_atom, transport_listener_actor listener, uint64_t tag) {
      flush_end(self, net);
      self->send(net, attach_atom::value, me(), std::move(listener), tag);
    },
    [=](send_atom, std::string& text) { queue_frame(self, net, std::move(text)); },
    [=](send_atom, const shared_frame& f) { queue_frame(self, net, f.str()); },
    [=](close_atom, uint16_t code, std::string& reason) {
      flush_end(self, net);
      self->send(net, close_atom::value, me(), code, std::move(reason));
    },
    [=](flush_atom) { flush_end(self, net); },
  };
}

} // namespace

memory_network_actor spawn_memory_network(caf::actor_system& sys, uint64_t seed,
                                          network_tracer_actor tracer) {
  return sys.spawn(network, seed, std::move(tracer));
}

transport_actor spawn_memory_transport(caf::actor_system& sys,
                                       memory_network_actor net) {
  return caf::actor_cast<transport_actor>(sys.spawn(end, std::move(net)));
}

} // namespace kullsync

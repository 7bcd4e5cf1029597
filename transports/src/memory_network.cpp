#include "kullsync/transports/memory_network.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/messages/ws_url.hpp"
#include "kullsync/testing/sim_network.hpp"
#include "kullsync/transports/subprotocol.hpp"

namespace kullsync {

namespace {

using time_point = caf::actor_clock::time_point;
using dial_atom = caf::atom_constant<caf::atom("dial")>;
using deliver_atom = caf::atom_constant<caf::atom("deliver")>;
using hangup_atom = caf::atom_constant<caf::atom("hangup")>;

/// The network's own protocol: what servers and simulations send it, what
/// its ends send it, and a frame whose latency has passed and the flush of
/// the frames gathered for listeners and a peer's late close, which it sends
/// itself. One network
/// serves both handles: without faults set it has none.
using network_impl = sim_network_actor::extend<
  caf::reacts_to<dial_atom, link_actor, transport_listener_actor, uint64_t,
                 std::string, header_list>,
  caf::reacts_to<attach_atom, link_actor, transport_listener_actor, uint64_t,
                 std::string>,
  caf::reacts_to<send_atom, link_actor, frame_batch>,
  caf::reacts_to<credit_atom, link_actor, uint64_t, uint32_t>,
  caf::reacts_to<close_atom, link_actor, uint16_t, std::string>,
  caf::reacts_to<deliver_atom, uint64_t, bool, std::string>,
  caf::reacts_to<hangup_atom, uint64_t, uint16_t, std::string>,
  caf::reacts_to<flush_atom>>;

/// One end of a link, as its listener sees it.
struct link_end {
  link_actor end;
  transport_listener_actor listener;
  uint64_t tag = 0;
  bool attached = false;
  uint32_t credit = flow::window;   // frames the listener still takes
  std::vector<std::string> held;    // arrived before attach, or beyond credit
  time_point busy_until{};          // keeps this direction in order
};

struct link {
  uint64_t id = 0;
  link_end client;
  link_end server;
  std::string offered;  // the client's Sec-WebSocket-Protocol header
  bool half_open = false;
  bool to_client = false; // closing: the side that has yet to hear
  link_end& side(bool client_side) { return client_side ? client : server; }
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
  // Closed by one side, whose peer hears once the frames in flight to it
  // have arrived (as TCP delivers what was sent before its FIN). Neither
  // end reaches these links any more.
  std::map<uint64_t, link> closing;
  // Frames delivered since the last flush, in order. The flush is queued
  // behind whatever is in the mailbox: a burst goes out as one batch per
  // listener, a lone frame at once.
  std::vector<outgoing> outbox;
  bool flush_pending = false;
  std::map<caf::actor_addr, std::pair<uint64_t, bool>> ends; // -> link, client?
  // Several acceptors on one URL: nodes behind a load balancer, each dial
  // to one of them at random.
  std::map<std::string, std::vector<acceptor_actor>> acceptors;
  link_faults faults;
  bool refuse = false;
  std::mt19937_64 rng;
  network_stats stats;
  network_tracer_actor tracer;
  uint64_t next_id = 1;
  static inline const char* name = "kullsync.memory_network";
};

using network_ptr = network_impl::stateful_pointer<network_state>;

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
caf::timespan latency(network_ptr self, link_end& to) {
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
  for (auto& o : st.outbox)
    self->send(o.listener, frame_atom::value, o.tag, std::move(o.frames));
  st.outbox.clear();
}

/// Queues one frame for `to`'s listener, in the batch being gathered.
void gather(network_ptr self, link_end& to, std::string text) {
  auto& st = self->state;
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

/// A frame reaches `to`: its listener gets it now if it attached and has
/// credit left, else it is held (as a socket's buffer holds what is unread).
void hand_over(network_ptr self, link_end& to, std::string text) {
  ++self->state.stats.frames_delivered;
  if (!to.attached || to.credit == 0 || !to.held.empty()) {
    to.held.emplace_back(std::move(text));
    return;
  }
  --to.credit;
  gather(self, to, std::move(text));
}

/// Held frames go to the listener as far as its credit reaches (all of them
/// when `all`: the link ends, and what it carried comes before the end).
void release(network_ptr self, link_end& to, bool all = false) {
  if (!to.attached)
    return;
  size_t n = 0;
  for (; n < to.held.size() && (all || to.credit > 0); ++n) {
    if (to.credit > 0)
      --to.credit;
    gather(self, to, std::move(to.held[n]));
  }
  to.held.erase(to.held.begin(), to.held.begin() + n);
}

void notify_closed(network_ptr self, link_end& x, uint16_t code,
                   const std::string& reason) {
  release(self, x, true);
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
    release(self, peer, true);
    flush(self);
    if (delay.count() > 0) {
      // Heard after the frames in flight (scheduled no later than this).
      auto id = l.id;
      l.to_client = !client_side;
      auto kept = std::move(l);
      forget(self, kept);
      self->state.closing.emplace(id, std::move(kept));
      self->delayed_send(self, delay, hangup_atom::value, id, code, std::move(reason));
      return;
    }
    notify_closed(self, peer, code, reason);
  }
  forget(self, l);
}

/// The peer of a link closed earlier hears of it, after what was in flight.
void hang_up(network_ptr self, uint64_t id, uint16_t code, const std::string& reason) {
  auto i = self->state.closing.find(id);
  if (i == self->state.closing.end())
    return; // reset meanwhile (a clean cut told it)
  notify_closed(self, i->second.side(i->second.to_client), code, reason);
  self->state.closing.erase(i);
}

accepted_link_actor spawn_server_end(caf::actor_system& sys,
                                     network_impl net);

void dial(network_ptr self, link_actor end,
          transport_listener_actor listener, uint64_t tag,
          const std::string& url, header_list headers) {
  auto& st = self->state;
  ++st.stats.dials;
  bool client = false;
  if (auto* old = find_link(self, end.address(), client))
    close_from(self, *old, client, close_code::normal, "replaced");
  auto parts = detail::parse_ws_url(url);
  auto acc = parts ? st.acceptors.find(endpoint_key(*parts)) : st.acceptors.end();
  if (st.refuse || acc == st.acceptors.end() || acc->second.empty()) {
    ++st.stats.refused;
    trace(self, "refuse " + url);
    self->send(listener, closed_atom::value, tag, close_code::abnormal,
               std::string{parts ? "connection refused" : "invalid URL"});
    return;
  }
  link l;
  l.id = st.next_id++;
  for (auto& [k, v] : headers)
    if (iequals(k, "sec-websocket-protocol"))
      l.offered = v;
  l.client.end = end;
  l.client.listener = listener;
  l.client.tag = tag;
  // Attached once the server attaches: its frames wait for the handshake.
  auto server_end = spawn_server_end(self->home_system(),
                                     caf::actor_cast<network_impl>(self));
  l.server.end = server_end;
  st.ends[end.address()] = {l.id, true};
  st.ends[l.server.end.address()] = {l.id, false};
  trace(self, "open " + std::to_string(l.id));
  // The client learns of the completed handshake when the server attaches
  // (as a real server answers the upgrade), before any server frame.
  auto& nodes = acc->second;
  // One node: no draw, so one-node simulations keep their seeds' traces.
  auto& node = nodes.size() == 1 ? nodes.front() : nodes[st.rng() % nodes.size()];
  self->send(node, accept_atom::value, std::move(server_end), parts->target,
             std::move(headers), std::string{"memory"});
  st.links.emplace(l.id, std::move(l));
  st.stats.open_links = st.links.size();
}

void attach(network_ptr self, const link_actor& end,
            transport_listener_actor listener, uint64_t tag,
            const std::string& protocol) {
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
  // A real server echoes only a subprotocol the client offered.
  auto agreed = offers_subprotocol(l->offered, protocol) ? protocol : std::string{};
  flush(self);
  if (!client) {
    self->send(l->client.listener, opened_atom::value, l->client.tag, agreed);
    l->client.attached = true;
    release(self, l->client); // what the server sent before attaching
  }
  self->send(me.listener, opened_atom::value, tag, agreed);
  release(self, me);
}

/// The listener of `end`'s link handled `n` more frames.
void credit(network_ptr self, const link_actor& end, uint64_t tag,
            uint32_t n) {
  bool client = false;
  auto* l = find_link(self, end.address(), client);
  if (l == nullptr)
    return;
  auto& me = l->side(client);
  if (me.tag != tag)
    return; // for a link this end had before
  me.credit = std::min<uint32_t>(flow::window, me.credit + n);
  release(self, me);
}

/// Frames one end sent, in order: each may be lost or delayed on its own.
void send_frames(network_ptr self, const link_actor& end, frame_batch& frames) {
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
    int copies = 1;
    if (st.faults.duplicate_rate > 0) {
      std::bernoulli_distribution twice{st.faults.duplicate_rate};
      copies += twice(st.rng) ? 1 : 0;
    }
    for (int i = 0; i < copies; ++i) {
      auto delay = latency(self, peer);
      auto copy = i + 1 < copies ? text : std::move(text);
      if (delay.count() == 0)
        hand_over(self, peer, std::move(copy));
      else
        self->delayed_send(self, delay, deliver_atom::value, l->id, !client,
                           std::move(copy));
    }
  }
}

void cut(network_ptr self, cut_mode mode) {
  auto& st = self->state;
  if (mode == cut_mode::half_open) {
    for (auto& kv : st.links)
      kv.second.half_open = true;
    // Closing links too: what was in flight, and the close, never arrive.
    st.closing.clear();
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
  auto closing = std::move(st.closing);
  st.closing.clear();
  for (auto& kv : closing)
    notify_closed(self, kv.second.side(kv.second.to_client), close_code::abnormal,
                  "connection reset");
}

network_impl::behavior_type network(network_ptr self, uint64_t seed,
                                    network_tracer_actor tracer) {
  self->state.rng.seed(seed);
  self->state.tracer = std::move(tracer);
  return {
    [=](dial_atom, link_actor end, transport_listener_actor listener,
        uint64_t tag, const std::string& url, header_list headers) {
      dial(self, std::move(end), std::move(listener), tag, url,
           std::move(headers));
    },
    [=](attach_atom, const link_actor& end,
        transport_listener_actor listener, uint64_t tag,
        const std::string& protocol) {
      attach(self, end, std::move(listener), tag, protocol);
    },
    [=](credit_atom, const link_actor& end, uint64_t tag, uint32_t n) {
      credit(self, end, tag, n);
    },
    [=](send_atom, const link_actor& end, frame_batch& frames) {
      send_frames(self, end, frames);
    },
    [=](close_atom, const link_actor& end, uint16_t code,
        std::string& reason) {
      bool client = false;
      if (auto* l = find_link(self, end.address(), client))
        close_from(self, *l, client, code, std::move(reason));
    },
    [=](listen_atom, const std::string& url, acceptor_actor acc) {
      if (auto key = endpoint_key(url)) {
        auto& all = self->state.acceptors[*key];
        if (std::find(all.begin(), all.end(), acc) == all.end())
          all.push_back(std::move(acc));
      }
    },
    [=](unlisten_atom, const std::string& url) {
      if (auto key = endpoint_key(url))
        self->state.acceptors.erase(*key);
    },
    [=](unlisten_atom, const std::string& url, const acceptor_actor& acc) {
      if (auto key = endpoint_key(url)) {
        auto& all = self->state.acceptors[*key];
        all.erase(std::remove(all.begin(), all.end(), acc), all.end());
      }
    },
    [=](faults_atom, link_faults f) { self->state.faults = f; },
    [=](refuse_atom, bool on) { self->state.refuse = on; },
    [=](cut_atom, cut_mode mode) { cut(self, mode); },
    [=](stats_atom) {
      auto s = self->state.stats;
      s.closing_links = self->state.closing.size();
      return s;
    },
    [=](flush_atom) {
      self->state.flush_pending = false;
      flush(self);
    },
    [=](deliver_atom, uint64_t id, bool to_client, std::string& text) {
      auto& st = self->state;
      link* l = nullptr;
      if (auto i = st.links.find(id); i != st.links.end())
        l = &i->second;
      else if (auto j = st.closing.find(id); j != st.closing.end() && j->second.to_client == to_client)
        l = &j->second; // a closing link still carries what was sent to the side yet to hear
      if (l == nullptr || l->half_open) {
        ++st.stats.frames_dropped;
        return;
      }
      hand_over(self, l->side(to_client), std::move(text));
    },
    [=](hangup_atom, uint64_t id, uint16_t code, const std::string& reason) {
      hang_up(self, id, code, reason);
    },
  };
}

// -- ends ---------------------------------------------------------------------

/// Frames a transport end sent since its last flush; they reach the network
/// as one message, ahead of anything else the end sends.
struct memory_end_state {
  frame_batch outbox;
  static inline const char* name = "kullsync.memory_transport";
};

// Both ends' (typed) self pointers share these.
template <class Self>
void flush_end(Self self, const network_impl& net) {
  auto& out = self->state.outbox;
  if (out.empty())
    return;
  self->send(net, send_atom::value, caf::actor_cast<link_actor>(self),
             std::move(out));
  out.clear();
}

template <class Self>
void queue_frame(Self self, const network_impl& net, std::string text) {
  auto& out = self->state.outbox;
  out.push_back(std::move(text));
  if (out.size() == max_batch)
    flush_end(self, net);
  else if (out.size() == 1)
    self->send(self, flush_atom::value);
}

/// What both ends do: the link role, plus the flush an end queues to itself.
template <class Self>
auto link_handlers(Self self, const network_impl& net) {
  auto me = [self] { return caf::actor_cast<link_actor>(self); };
  return std::make_tuple(
    [=](credit_atom, uint64_t tag, uint32_t n) {
      self->send(net, credit_atom::value, me(), tag, n);
    },
    [=](send_atom, std::string& text) { queue_frame(self, net, std::move(text)); },
    [=](send_atom, const shared_frame& f) { queue_frame(self, net, f.str()); },
    [=](close_atom, uint16_t code, std::string& reason) {
      flush_end(self, net);
      self->send(net, close_atom::value, me(), code, std::move(reason));
    },
    [=](flush_atom) { flush_end(self, net); });
}

/// An end's behavior: its role's own handler and the link's.
template <class Role, class Self, class Handler>
typename Role::behavior_type end_behavior(Self self, const network_impl& net,
                                          Handler role_handler) {
  return std::apply(
    [](auto&&... fs) { return typename Role::behavior_type{std::move(fs)...}; },
    std::tuple_cat(link_handlers(self, net), std::make_tuple(std::move(role_handler))));
}

/// Each end's own protocol: its role, plus the flush it queues to itself.
using client_end_actor = dialer_actor::extend<caf::reacts_to<flush_atom>>;
using server_end_actor = accepted_link_actor::extend<caf::reacts_to<flush_atom>>;

client_end_actor::behavior_type
client_end(client_end_actor::stateful_pointer<memory_end_state> self,
           network_impl net) {
  return end_behavior<client_end_actor>(
    self, net,
    [=](connect_atom, transport_listener_actor listener, uint64_t tag,
        std::string& url, header_list& headers) {
      flush_end(self, net);
      self->send(net, dial_atom::value, caf::actor_cast<link_actor>(self),
                 std::move(listener), tag, std::move(url), std::move(headers));
    });
}

server_end_actor::behavior_type
server_end(server_end_actor::stateful_pointer<memory_end_state> self,
           network_impl net) {
  return end_behavior<server_end_actor>(
    self, net,
    [=](attach_atom, transport_listener_actor listener, uint64_t tag,
        std::string& protocol) {
      flush_end(self, net);
      self->send(net, attach_atom::value, caf::actor_cast<link_actor>(self),
                 std::move(listener), tag, std::move(protocol));
    });
}

accepted_link_actor spawn_server_end(caf::actor_system& sys,
                                     network_impl net) {
  return caf::actor_cast<accepted_link_actor>(sys.spawn(server_end, std::move(net)));
}

} // namespace

memory_network_actor spawn_memory_network(caf::actor_system& sys, uint64_t seed) {
  return sim::spawn_sim_network(sys, seed);
}

dialer_actor spawn_memory_transport(caf::actor_system& sys,
                                    memory_network_actor net) {
  return caf::actor_cast<dialer_actor>(
    sys.spawn(client_end, caf::actor_cast<network_impl>(std::move(net))));
}

} // namespace kullsync

namespace kullsync::sim {

sim_network_actor spawn_sim_network(caf::actor_system& sys, uint64_t seed,
                                    network_tracer_actor tracer) {
  return caf::actor_cast<sim_network_actor>(sys.spawn(network, seed, std::move(tracer)));
}

} // namespace kullsync::sim

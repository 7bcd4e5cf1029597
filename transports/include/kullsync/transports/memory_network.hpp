#pragma once

/// An in-process network for deterministic tests: links between
/// memory_transport ends, with seeded faults and CAF's (virtual) clock.
/// Nothing here sleeps: under the testing scheduler all time is virtual.

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

#include "kullsync/transports/transport.hpp"

namespace kullsync {

using dial_atom = caf::atom_constant<caf::atom("dial")>;
using listen_atom = caf::atom_constant<caf::atom("listen")>;
using unlisten_atom = caf::atom_constant<caf::atom("unlisten")>;
using faults_atom = caf::atom_constant<caf::atom("faults")>;
using refuse_atom = caf::atom_constant<caf::atom("refuse")>;
using cut_atom = caf::atom_constant<caf::atom("cut")>;
using trace_atom = caf::atom_constant<caf::atom("trace")>;

/// What happens to frames in flight.
struct link_faults {
  double drop_rate = 0;           // probability that a frame is lost
  double duplicate_rate = 0;      // ... that it arrives twice (a faulty relay)
  caf::timespan min_delay{0};     // latency of each frame, drawn uniformly
  caf::timespan max_delay{0};     // from [min_delay, max_delay]
};

enum class cut_mode : uint8_t {
  clean,     // both ends see closed(1006)
  half_open, // frames silently vanish; nobody is told
};

struct network_stats {
  uint64_t dials = 0;
  uint64_t refused = 0;
  uint64_t open_links = 0;
  uint64_t frames_delivered = 0;
  uint64_t frames_dropped = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_faults& x) {
  return f(caf::meta::type_name("link_faults"), x.drop_rate, x.duplicate_rate,
           x.min_delay, x.max_delay);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, network_stats& x) {
  return f(caf::meta::type_name("network_stats"), x.dials, x.refused,
           x.open_links, x.frames_delivered, x.frames_dropped);
}

/// Receives one line per network event ("open 3", "cut 3 half_open", ...).
using network_tracer_actor
  = caf::typed_actor<caf::reacts_to<trace_atom, std::string>>;

using memory_network_actor = caf::typed_actor<
  // from memory_transport ends
  caf::reacts_to<dial_atom, link_actor, transport_listener_actor, uint64_t,
                 std::string, header_list>,
  caf::reacts_to<attach_atom, link_actor, transport_listener_actor,
                 uint64_t, std::string>,
  caf::reacts_to<send_atom, link_actor, frame_batch>,
  caf::reacts_to<credit_atom, link_actor, uint64_t, uint32_t>,
  caf::reacts_to<close_atom, link_actor, uint16_t, std::string>,
  // servers
  caf::reacts_to<listen_atom, std::string, acceptor_actor>,
  caf::reacts_to<unlisten_atom, std::string>,
  caf::reacts_to<unlisten_atom, std::string, acceptor_actor>, // one of several
  // fault injection
  caf::reacts_to<faults_atom, link_faults>,
  caf::reacts_to<refuse_atom, bool>,
  caf::reacts_to<cut_atom, cut_mode>,
  caf::replies_to<stats_atom>::with<network_stats>>;

/// Spawns a network; `seed` drives every random fault decision.
memory_network_actor spawn_memory_network(caf::actor_system& sys, uint64_t seed,
                                          network_tracer_actor tracer = {});

/// Spawns a client's end: a transport whose links go through `net` (the
/// server's ends are the network's own, handed to its acceptors). URLs are
/// matched by scheme, host and path ("ws://sim/ws?token=..." reaches the
/// acceptor listening on "ws://sim/ws"). A `Sec-WebSocket-Protocol` header
/// of the dial offers subprotocols; the server's attach picks one. Each end
/// keeps to the transport's flow control (`flow::window`) as a socket does.
dialer_actor spawn_memory_transport(caf::actor_system& sys,
                                    memory_network_actor net);

} // namespace kullsync

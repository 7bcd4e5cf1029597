#pragma once

/// The simulation kit (kullsync::testing): a memory network with seeded
/// faults, for deterministic tests of code built on kullsync. Not for
/// production: an app's own transport is beast_transport or memory_transport.
///
///     auto net = kullsync::sim::spawn_sim_network(sys, seed);
///     caf::anon_send(net, faults_atom::value, link_faults{0.01});
///     caf::anon_send(net, cut_atom::value, cut_mode::half_open);
///     auto transport = kullsync::spawn_memory_transport(sys, net);

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/transports/memory_network.hpp"

namespace kullsync {

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
  uint64_t closing_links = 0; // closed by one end, the other not told yet
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
           x.open_links, x.closing_links, x.frames_delivered, x.frames_dropped);
}

/// Receives one line per network event ("open 3", "cut 3 half_open", ...).
using network_tracer_actor
  = caf::typed_actor<caf::reacts_to<trace_atom, std::string>>;

/// A memory network a simulation controls: its links' faults, refused dials,
/// cuts of every open link, and what it counted. Usable wherever a
/// `memory_network_actor` is.
using sim_network_actor = memory_network_actor::extend<
  caf::reacts_to<faults_atom, link_faults>,
  caf::reacts_to<refuse_atom, bool>,
  caf::reacts_to<cut_atom, cut_mode>,
  caf::replies_to<stats_atom>::with<network_stats>>;

} // namespace kullsync

namespace kullsync::sim {

/// Spawns a network whose every random fault decision is drawn from `seed`;
/// `tracer` gets one line per network event.
sim_network_actor spawn_sim_network(caf::actor_system& sys, uint64_t seed,
                                    network_tracer_actor tracer = {});

/// Registers the kit's message types (link_faults, cut_mode, network_stats).
void add_sim_types(caf::actor_system_config& cfg);

} // namespace kullsync::sim

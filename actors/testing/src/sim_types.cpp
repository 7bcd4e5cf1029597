#include <caf/actor_system_config.hpp>

#include "kullsync/testing/sim_network.hpp"

namespace kullsync::sim {

void add_sim_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<link_faults>("kullsync::link_faults")
    .add_message_type<cut_mode>("kullsync::cut_mode")
    .add_message_type<network_stats>("kullsync::network_stats")
    .add_message_type<network_tracer_actor>("kullsync::network_tracer_actor")
    .add_message_type<sim_network_actor>("kullsync::sim_network_actor");
}

} // namespace kullsync::sim

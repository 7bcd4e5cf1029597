#include "kullsync/client/caf_types.hpp"

#include <caf/actor_system_config.hpp>

namespace kullsync {

void add_client_types(caf::actor_system_config& cfg) {
  msg::add_message_types(cfg);
  add_transport_types(cfg);
  cfg.add_message_type<connection_status>("kullsync::connection_status")
    .add_message_type<retry_decision>("kullsync::retry_decision")
    .add_message_type<sync_state>("kullsync::sync_state")
    .add_message_type<state_baseline>("kullsync::state_baseline")
    .add_message_type<msg::server_type>("kullsync::server_type")
    .add_message_type<state_subscriber_actor>("kullsync::state_subscriber")
    .add_message_type<status_subscriber_actor>("kullsync::status_subscriber")
    .add_message_type<message_subscriber_actor>("kullsync::message_subscriber");
}

} // namespace kullsync

#include "kullsync/client/caf_types.hpp"

#include <caf/actor_system_config.hpp>

#include "kullsync/client/protocol.hpp"
#include "kullsync/common/caf_types.hpp"
#include "spawn.hpp"

namespace kullsync {

void add_client_types(caf::actor_system_config& cfg) {
  add_common_types(cfg);
  cfg.add_message_type<connection_status>("kullsync::connection_status")
    .add_message_type<retry_decision>("kullsync::retry_decision")
    .add_message_type<sync_state>("kullsync::sync_state")
    .add_message_type<client_telemetry>("kullsync::client_telemetry")
    .add_message_type<state_subscriber_actor>("kullsync::state_subscriber")
    .add_message_type<status_subscriber_actor>("kullsync::status_subscriber")
    .add_message_type<message_subscriber_actor>("kullsync::message_subscriber");
}

} // namespace kullsync

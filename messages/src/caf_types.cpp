#include "kullsync/messages/caf_types.hpp"

#include <caf/actor_system_config.hpp>

namespace kullsync::msg {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<shoot_progress>("kullsync::shoot_progress")
    .add_message_type<credit_update>("kullsync::credit_update")
    .add_message_type<prompt_change>("kullsync::prompt_change")
    .add_message_type<device_connection>("kullsync::device_connection")
    .add_message_type<admin_session_update>("kullsync::admin_session_update")
    .add_message_type<provider_health>("kullsync::provider_health")
    .add_message_type<ping>("kullsync::ping")
    .add_message_type<user_state>("kullsync::user_state")
    .add_message_type<welcome>("kullsync::welcome")
    .add_message_type<server_message>("kullsync::server_message")
    .add_message_type<client_message>("kullsync::client_message");
}

} // namespace kullsync::msg

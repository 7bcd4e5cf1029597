#include "kullsync/transports/caf_types.hpp"

#include <caf/actor_system_config.hpp>

#include "kullsync/transports/http_client.hpp"

namespace kullsync {

void add_transport_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<header_list>("kullsync::header_list")
    .add_message_type<shared_frame>("kullsync::shared_frame")
    .add_message_type<link_actor>("kullsync::link_actor")
    .add_message_type<dialer_actor>("kullsync::dialer_actor")
    .add_message_type<accepted_link_actor>("kullsync::accepted_link_actor")
    .add_message_type<transport_listener_actor>(
      "kullsync::transport_listener_actor")
    .add_message_type<acceptor_actor>("kullsync::acceptor_actor")
    .add_message_type<http_result>("kullsync::http_result")
    .add_message_type<http_client_actor>("kullsync::http_client_actor");
}

} // namespace kullsync

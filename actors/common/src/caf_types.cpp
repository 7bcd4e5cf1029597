#include "kullsync/common/caf_types.hpp"

#include <caf/actor_system_config.hpp>

#include "kullsync/messages/caf_types.hpp"
#include "kullsync/transports/caf_types.hpp"

namespace kullsync {

void add_common_types(caf::actor_system_config& cfg) {
  msg::add_message_types(cfg);
  add_transport_types(cfg);
  cfg.add_message_type<msg::server_type>("kullsync::server_type");
}

} // namespace kullsync

#pragma once

/// Registration of the transport-level message types (their inspect
/// overloads live beside the types).

#include <caf/fwd.hpp>

#include "kullsync/transports/memory_network.hpp"

namespace kullsync {

/// Registers header_list, shared_frame, http_result and the transport
/// handle types.
void add_transport_types(caf::actor_system_config& cfg);

} // namespace kullsync

#pragma once

/// Registration of the client engine's message types.

#include <caf/fwd.hpp>

namespace kullsync {

/// Registers every type the client engine sends between actors, including
/// the wire and transport types. Call on the host's config before creating
/// its actor system.
void add_client_types(caf::actor_system_config& cfg);

} // namespace kullsync

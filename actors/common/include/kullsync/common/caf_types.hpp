#pragma once

/// Registration of the types both the client engine and the server send
/// between actors: the wire types and the transport's.

#include <caf/fwd.hpp>

namespace kullsync {

/// Registers the wire and transport types with `cfg`; add_client_types and
/// add_server_types call it.
void add_common_types(caf::actor_system_config& cfg);

} // namespace kullsync

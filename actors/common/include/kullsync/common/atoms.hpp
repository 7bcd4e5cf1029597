#pragma once

/// Atoms that the client engine and the server both speak (the transport's
/// own are in kullsync/transports/transport.hpp).

#include <caf/atom.hpp>

namespace kullsync {

using get_atom = caf::atom_constant<caf::atom("get")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using load_atom = caf::atom_constant<caf::atom("load")>;

} // namespace kullsync

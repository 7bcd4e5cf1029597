#pragma once

// Private to the server side of kullsync_transports.

#include <memory>

#include <caf/fwd.hpp>

#include "kullsync/transports/transport.hpp"

namespace kullsync::detail {

class ws_connection;

/// The actor of an accepted socket: messages to it are handled where they
/// are sent (a lock, a push, at most one post onto the socket's io thread),
/// not scheduled on a CAF worker first. It serves accepted_link_actor and
/// can be monitored like any actor.
accepted_link_actor make_socket_endpoint(caf::actor_system& sys,
                                         std::shared_ptr<ws_connection> c);

} // namespace kullsync::detail

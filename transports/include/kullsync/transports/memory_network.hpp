#pragma once

/// An in-process network: links between memory_transport ends and the
/// acceptors listening on it, on CAF's clock (virtual under the testing
/// scheduler: nothing here sleeps). Faults and tracing are the simulation
/// kit's (kullsync/testing/sim_network.hpp).

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/transports/transport.hpp"

namespace kullsync {

using listen_atom = caf::atom_constant<caf::atom("listen")>;
using unlisten_atom = caf::atom_constant<caf::atom("unlisten")>;

/// A network, as the servers listening on it use it.
using memory_network_actor = caf::typed_actor<
  caf::reacts_to<listen_atom, std::string, acceptor_actor>,
  caf::reacts_to<unlisten_atom, std::string>,
  caf::reacts_to<unlisten_atom, std::string, acceptor_actor>>; // one of several

/// Spawns a network without faults; `seed` picks which of several acceptors
/// listening on one URL a dial reaches.
memory_network_actor spawn_memory_network(caf::actor_system& sys, uint64_t seed = 1);

/// Spawns a client's end: a transport whose links go through `net` (the
/// server's ends are the network's own, handed to its acceptors). URLs are
/// matched by scheme, host and path ("ws://sim/ws?token=..." reaches the
/// acceptor listening on "ws://sim/ws"). A `Sec-WebSocket-Protocol` header
/// of the dial offers subprotocols; the server's attach picks one. Each end
/// keeps to the transport's flow control (`flow::window`) as a socket does.
dialer_actor spawn_memory_transport(caf::actor_system& sys,
                                    memory_network_actor net);

} // namespace kullsync

#pragma once

/// The typed interfaces of the sync server's actors.
///
///   transport --accept--> acceptor --spawns--> session (one per socket)
///   session --join/leave/publish--> hub shard (users hashed over shards)
///   hub shard --send(shared_frame)--> the sockets of that user
///   HTTP --http(exchange)--> http_api --publish--> hub shard

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/common/atoms.hpp"
#include "kullsync/messages/caf_types.hpp"
#include "kullsync/messages/types.hpp"
#include "kullsync/transports/http.hpp"
#include "kullsync/transports/transport.hpp"

namespace kullsync::server {

using join_atom = caf::atom_constant<caf::atom("join")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;

/// Counters of one shard (summed by /api/sync/status).
struct hub_stats {
  uint64_t users = 0;
  uint64_t sockets = 0;
  uint64_t frames_out = 0;
  uint64_t rejected_sockets = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hub_stats& x) {
  return f(caf::meta::type_name("hub_stats"), x.users, x.sockets, x.frames_out,
           x.rejected_sockets);
}

/// One socket's actor: its transport's listener, which also takes a close
/// order (shutdown). Broadcast frames bypass it (hub -> socket).
using session_actor
  = transport_listener_actor::extend<caf::reacts_to<close_atom, uint16_t, std::string>>;

/// A shard of the user -> sockets registry. `publish` sends a message to
/// every device of a user (serialised once; `data_json` non-empty: relayed
/// verbatim as `data`) and updates what the server remembers. Frames go
/// straight to each socket's transport (given at `join`); the session keeps
/// the control path. `join` answers false when the user's socket cap is
/// reached (the socket is then not registered). `snapshot` is what the hub
/// remembers of a user (GET /api/sync/state).
using hub_actor = caf::typed_actor<
  caf::replies_to<join_atom, std::string, std::string, session_actor,
                  transport_actor>::with<bool>,
  caf::reacts_to<leave_atom, session_actor>,
  caf::reacts_to<publish_atom, std::string, msg::server_message, std::string>,
  caf::reacts_to<shutdown_atom, uint16_t, std::string>,
  caf::replies_to<snapshot_atom, std::string>::with<msg::user_state>,
  caf::replies_to<stats_atom>::with<hub_stats>>;

} // namespace kullsync::server

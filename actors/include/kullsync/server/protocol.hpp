#pragma once

/// The typed interfaces of the sync server's actors.
///
///   transport --accept--> acceptor --spawns--> session (one per socket)
///   session --join/leave/publish--> hub shard (users hashed over shards)
///   hub shard --deliver(shared_frame)--> sessions of that user
///   HTTP --http(exchange)--> publisher --publish--> hub shard

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/client/protocol.hpp"
#include "kullsync/transports/http.hpp"
#include "kullsync/transports/transport.hpp"

namespace kullsync::server {

using join_atom = caf::atom_constant<caf::atom("join")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;

/// What the server remembers of one user, served at GET /api/sync/state.
struct user_snapshot {
  std::string user_id;
  std::optional<int64_t> credits;
  std::vector<msg::shoot_progress> shoots; // active, by shootId
  std::vector<std::string> devices;        // connected now
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_snapshot& x) {
  auto credits = detail::optional_field(x.credits);
  return f(caf::meta::type_name("user_snapshot"), x.user_id, credits, x.shoots,
           x.devices);
}

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

/// One socket's actor: a transport listener that also takes a close order
/// (socket cap, shutdown). Broadcast frames bypass it (hub -> socket).
using session_actor = caf::typed_actor<
  caf::reacts_to<opened_atom, uint64_t>,
  caf::reacts_to<frame_atom, uint64_t, std::string>,
  caf::reacts_to<frame_atom, uint64_t, frame_batch>,
  caf::reacts_to<closed_atom, uint64_t, uint16_t, std::string>,
  caf::reacts_to<close_atom, uint16_t, std::string>>;

/// A shard of the user -> sessions registry. `publish` sends a message to
/// every device of a user (serialised once; `data_json` non-empty: relayed
/// verbatim as `data`) and updates what the server remembers. Frames go
/// straight to each socket's transport (given at `join`); the session keeps
/// the control path. `join` answers false when the user's socket cap is
/// reached (the socket is then not registered).
using hub_actor = caf::typed_actor<
  caf::replies_to<join_atom, std::string, std::string, session_actor,
                  transport_actor>::with<bool>,
  caf::reacts_to<leave_atom, session_actor>,
  caf::reacts_to<publish_atom, std::string, msg::server_message, std::string>,
  caf::reacts_to<expire_atom, std::string, std::string, uint64_t>,
  caf::reacts_to<shutdown_atom, uint16_t, std::string>,
  caf::replies_to<snapshot_atom, std::string>::with<user_snapshot>,
  caf::replies_to<stats_atom>::with<hub_stats>>;

} // namespace kullsync::server

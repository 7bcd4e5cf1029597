#pragma once

// A scripted in-memory peer that speaks the v1 server protocol of
// PROTOCOL.md: per-user fan-out, DEVICE_CONNECTED/DISCONNECTED, PING -> PONG,
// UPDATE_PROGRESS -> SHOOT_PROGRESS. Tests drive it and read its truth.

#include <map>
#include <set>
#include <vector>
#include <string>

#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include "kullsync/client/protocol.hpp"
#include "kullsync/common/inspect_optional.hpp"
#include "kullsync/transports/memory_network.hpp"

namespace kullsync::test {

/// What the peer believes about one user.
struct peer_truth {
  std::map<std::string, msg::shoot_progress> shoots; // latest, terminal included
  std::optional<int64_t> credits;
  std::set<std::string> devices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_truth& x) {
  auto credits = detail::optional_field(x.credits);
  return f(caf::meta::type_name("peer_truth"), x.shoots, credits, x.devices);
}

using fresh_atom = caf::atom_constant<caf::atom("fresh")>;
using peer_close_atom = caf::atom_constant<caf::atom("pclose")>;

using peer_actor = caf::typed_actor<
  caf::reacts_to<accept_atom, accepted_link_actor, std::string, header_list, std::string>,
  caf::reacts_to<opened_atom, uint64_t, std::string>,
  caf::reacts_to<frame_atom, uint64_t, frame_batch>,
  caf::reacts_to<closed_atom, uint64_t, uint16_t, std::string>,
  /// Sends `m` to every device of the user and records it as truth.
  caf::reacts_to<publish_atom, std::string, msg::server_message>,
  /// Sends the user's whole truth (shoots, credits, devices) to its devices.
  caf::reacts_to<fresh_atom, std::string>,
  /// Closes every link of the peer with this code.
  caf::reacts_to<peer_close_atom, uint16_t>,
  caf::replies_to<get_atom, std::string>::with<peer_truth>>;

using peer_world = std::map<std::string, peer_truth>;

/// Spawns a peer that listens on each of `urls` of `net`. `wall_start_ms` is
/// the epoch time at actor clock zero. `world` is what the backend behind
/// the peer already knows (it survives a restart of the peer).
peer_actor spawn_scripted_peer(caf::actor_system& sys, memory_network_actor net,
                               std::vector<std::string> urls,
                               int64_t wall_start_ms, peer_world world = {});

} // namespace kullsync::test

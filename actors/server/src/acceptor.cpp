#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "server_actors.hpp"

namespace kullsync::server {

namespace {

struct acceptor_state {
  static inline const char* name = "kullsync.acceptor";
};

/// Spawns a session for every link a transport accepted.
acceptor_actor::behavior_type
acceptor(acceptor_actor::stateful_pointer<acceptor_state> self,
         std::shared_ptr<const session_env> env) {
  return {
    [=](accept_atom, transport_actor t, std::string& target, header_list& headers) {
      spawn_session(self->home_system(), env, std::move(t), std::move(target),
                    std::move(headers));
    },
  };
}

} // namespace

acceptor_actor spawn_acceptor(caf::actor_system& sys,
                              std::shared_ptr<const session_env> env) {
  return sys.spawn(acceptor, std::move(env));
}

} // namespace kullsync::server

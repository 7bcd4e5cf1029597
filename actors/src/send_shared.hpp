#pragma once

// Private to kullsync_actors.

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>

namespace kullsync::detail {

/// Sends `m` to `dest` from `self`. Built once with caf::make_message, one
/// message is shared (copy-on-write) by every mailbox it goes to, where
/// `self->send` per receiver would copy the content for each. The caller
/// builds `m` with the arguments of one of `dest`'s typed handlers.
template <class Self, class Handle>
void send_shared(Self* self, const Handle& dest, const caf::message& m) {
  if (auto* ptr = caf::actor_cast<caf::abstract_actor*>(dest))
    ptr->enqueue(self->ctrl(), caf::make_message_id(), m, self->context());
}

} // namespace kullsync::detail

#pragma once

// Private to the broker: how the broker actor and its hiredis links reach
// each other across the io thread (redis_link.cpp, redis_sentinel.cpp).

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "redis_link.hpp"

namespace kullsync::broker {

inline broker_impl handle(broker_ptr self) {
  return caf::actor_cast<broker_impl>(self);
}

/// Runs `f` on the io thread: at once when the broker runs there (as it
/// does when Redis or a hub on that thread woke it), else posted; nothing
/// once the broker stopped. Commands issued in one turn thus leave in one
/// write: hiredis writes its buffer when the socket is next writable.
template <class F>
void on_io(broker_ptr self, F f) {
  auto* io = self->state.shared->io.load();
  if (!io)
    return;
  if (io->get_executor().running_in_this_thread())
    f();
  else
    boost::asio::post(*io, std::move(f));
}

/// A send from the io thread (a hiredis callback) through its io bridge:
/// the broker, marked run_on_io_thread, then runs on that thread too, right
/// after this handler, instead of waking a CAF worker.
template <class... Ts>
void wake(caf::execution_unit* unit, const broker_impl& h, Ts&&... xs) {
  if (h)
    h->eq_impl(caf::make_message_id(), nullptr, unit, std::forward<Ts>(xs)...);
}

} // namespace kullsync::broker

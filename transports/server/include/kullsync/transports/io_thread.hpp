#pragma once

/// Which actors a server's io threads may run. A frame then travels
/// socket -> session -> hub -> sockets on the io thread that read it, with
/// no wake-up of another thread in between.

#include <caf/fwd.hpp>

namespace kullsync {

/// Marks `self` as an actor whose turns an io thread of beast_server runs
/// when a socket (or another marked actor running there) wakes it, instead of
/// waiting for a CAF worker. Woken from anywhere else (a timer, the
/// application), it runs on CAF's scheduler as usual, and CAF's mailbox
/// still ensures it never runs on two threads at once. It must never block.
/// Call from the actor's own initialisation (its behavior factory). A server
/// started with `actors_on_io = false` ignores the mark; the memory network
/// has no io thread.
void run_on_io_thread(caf::local_actor* self);

} // namespace kullsync

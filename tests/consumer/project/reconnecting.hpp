#pragma once

// For the consumer programs: waits on an engine's status, not a poll.

#include <chrono>
#include <future>
#include <memory>
#include <mutex>

#include <kullsync/client/engine.hpp>

/// Connects `engine` (after subscribing to its status, so that no status
/// is missed) and tells whether it reported reconnecting within `limit`.
inline bool connects_then_reconnects(caf::actor_system& sys, kullsync::client_engine& engine,
                                     std::chrono::seconds limit) {
  auto reconnecting = std::make_shared<std::promise<void>>();
  auto once = std::make_shared<std::once_flag>();
  auto seen = reconnecting->get_future();
  engine.subscribe(kullsync::make_status_callback(
    sys, [reconnecting, once](const kullsync::connection_status& s) {
      if (s.state == kullsync::connection_state::reconnecting)
        std::call_once(*once, [&] { reconnecting->set_value(); });
    }));
  engine.connect();
  return seen.wait_for(limit) == std::future_status::ready;
}

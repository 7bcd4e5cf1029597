#pragma once

/// The real-socket client transport: ws:// and wss:// over Boost.Beast on
/// its own io_context thread, interchangeable with memory_transport.
/// Every failure reaches the owner as closed(tag, code, readable reason).

#include <chrono>
#include <string>

#include <caf/fwd.hpp>

#include "kullsync/transports/transport.hpp"

namespace kullsync {

struct beast_transport_options {
  /// Skip certificate verification (development only).
  bool insecure = false;
  /// Extra CA file (PEM) trusted besides the system store; empty: none.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{10000}; // resolve + TCP + TLS
  std::chrono::milliseconds handshake_timeout{10000}; // WebSocket upgrade
  size_t max_frame_bytes = 1 << 20; // larger incoming frames: close 1009
};

/// Spawns a transport with its own io thread (stopped when the actor ends).
transport_actor spawn_beast_transport(caf::actor_system& sys,
                                      beast_transport_options opts = {});

} // namespace kullsync

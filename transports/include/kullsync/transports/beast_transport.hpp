#pragma once

/// The real-socket client transport: ws:// and wss:// over Boost.Beast on
/// its own io_context thread, interchangeable with memory_transport.
/// Every failure reaches the owner as closed(tag, code, readable reason).

#include <chrono>
#include <string>

#include <caf/fwd.hpp>

#include "kullsync/transports/transport.hpp"

namespace kullsync {

/// Socket threads shared by client transports. A process holding thousands of
/// links (a load test, a gateway) shares one instead of a thread per link.
struct client_io {
  struct runtime;
  std::shared_ptr<runtime> rt;
};

/// Starts `threads` socket threads, stopped when the last transport using
/// them (and the returned handle) is gone.
client_io make_client_io(size_t threads = 1);

struct beast_transport_options {
  /// Skip certificate verification (development only).
  bool insecure = false;
  /// Extra CA file (PEM) trusted besides the system store; empty: none.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{10000}; // resolve + TCP + TLS
  std::chrono::milliseconds handshake_timeout{10000}; // WebSocket upgrade
  /// Larger incoming frames: close 1009. A server's SNAPSHOT may be
  /// megabytes (client_config's limits say the same).
  size_t max_frame_bytes = size_t{8} << 20;
  /// Socket threads to run on; empty: a thread of the transport's own.
  client_io io;
};

/// Spawns a transport on `opts.io`, or with its own io thread (stopped when
/// the actor ends).
dialer_actor spawn_beast_transport(caf::actor_system& sys,
                                   beast_transport_options opts = {});

} // namespace kullsync

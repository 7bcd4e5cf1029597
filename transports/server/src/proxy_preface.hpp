#pragma once

// Private to the server side of kullsync_transports: where every accepted
// socket begins. Behind a trusted balancer that speaks the PROXY protocol
// (--proxy-protocol on) its header comes first, before TLS or HTTP: it is
// read here and names the client. Then the socket goes on to TLS or HTTP,
// with what was read after the header.

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include "io_socket.hpp"

namespace kullsync::detail {

struct server_core;
class io_shard;

/// What the server knows of a connection's client.
struct peer_info {
  std::string address;  // the client's IP address, as far as known
  bool trusted = false; // the socket's peer is a trusted proxy
  /// `address` came from a PROXY header: it wins over any X-Forwarded-For
  /// (a balancer in HTTP mode passes the client's own header through).
  bool proxied = false;
};

/// Serves an accepted socket: its PROXY header when the server expects one,
/// then TLS or HTTP. A PROXY header from a peer that is not trusted, none
/// from a trusted peer while --proxy-protocol is on, or a malformed one
/// closes the socket (logged, counted).
void start_connection(const std::shared_ptr<server_core>& core, io_shard& shard,
                      io_socket&& socket);

} // namespace kullsync::detail

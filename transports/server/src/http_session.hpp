#pragma once

// Private to the server side of kullsync_transports.

#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "proxy_preface.hpp"
#include "server_core.hpp"
#include "io_socket.hpp"

namespace kullsync::detail {

/// Reads HTTP requests from an accepted socket (keep-alive) and hands each to
/// the server's http_handler actor; an upgrade on the WebSocket path becomes
/// a ws_connection. `peer`: who is at the other end (a TLS session's
/// plaintext side cannot say); a trusted proxy's X-Forwarded-For names the
/// client of each request unless a PROXY header did. `early`: bytes already
/// read from the socket.
void start_http_session(std::shared_ptr<server_core> core, io_shard& shard,
                        io_socket&& socket, peer_info peer, std::string early);

} // namespace kullsync::detail

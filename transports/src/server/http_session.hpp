#pragma once

// Private to the server side of kullsync_transports.

#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "server_core.hpp"

namespace kullsync::detail {

/// Reads HTTP requests from an accepted socket (keep-alive) and hands each to
/// the server's http_handler actor; an upgrade on the WebSocket path becomes
/// a ws_connection. `peer`: the client's address when the socket does not
/// know it (a TLS session's plaintext side); empty: the socket's own.
void start_http_session(std::shared_ptr<server_core> core, io_shard& shard,
                        net::ip::tcp::socket&& socket, std::string peer = {});

} // namespace kullsync::detail

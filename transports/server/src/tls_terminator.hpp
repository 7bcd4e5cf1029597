#pragma once

// Private to the server side of kullsync_transports.
//
// TLS for wss:// and https:// on the server's port: each accepted socket's
// TLS session is ended here, in the socket's io thread, and its plaintext
// is relayed over a local socket pair to the same HTTP/WebSocket path plain
// sockets take. So the server's frame reader, its output buffer and its
// flow control are the same code for ws:// and wss://; TLS costs a relay
// (two 16 KiB buffers per socket, one more copy per byte) on top of the
// cipher.

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "proxy_preface.hpp"
#include "io_socket.hpp"

namespace boost::asio::ssl {
class context;
}

namespace kullsync::detail {

struct server_core;
class io_shard;

/// The server's TLS context from a PEM certificate chain and private key.
/// Throws std::invalid_argument naming the file that does not load.
std::shared_ptr<boost::asio::ssl::context>
make_tls_context(const std::string& cert_file, const std::string& key_file);

/// Runs the TLS handshake on `socket` (bounded by the handshake timeout;
/// `early`: its first bytes, already read), then hands the plaintext side to
/// the HTTP session, with what is known of the client.
void start_tls_session(const std::shared_ptr<server_core>& core, io_shard& shard,
                       io_socket&& socket, peer_info peer,
                       std::string early);

} // namespace kullsync::detail

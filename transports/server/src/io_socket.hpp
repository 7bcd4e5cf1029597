#pragma once

// Private to the Beast translation units of kullsync_transports: the type
// of an accepted socket.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace kullsync::detail {

/// An accepted socket, bound to its io thread's io_context. Each of its
/// pending operations carries that 8-byte executor instead of a type-erased
/// `any_io_executor` (56 bytes; a pending wait is 112 bytes instead of 160),
/// and the socket is 40 bytes instead of 88: most sockets are idle, and
/// their memory is mostly such fixed costs.
using io_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp,
                                                   boost::asio::io_context::executor_type>;

} // namespace kullsync::detail

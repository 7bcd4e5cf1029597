#pragma once

/// HTTP and WebSocket on one port, over Boost.Beast on its own io threads.
/// Each accepted WebSocket becomes an accepted link handed to an acceptor;
/// each HTTP request goes to an http_handler actor. Each io thread serves
/// the sockets it was given (round robin) alone. No Beast or Asio in this
/// header.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "kullsync/metrics.hpp"
#include "kullsync/transports/http.hpp"
#include "kullsync/transports/transport.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace kullsync {

struct beast_server_options {
  std::string host = "0.0.0.0";
  uint16_t port = 5000;                // 0: an ephemeral port
  size_t io_threads = 1;                      // each serves its own sockets
  std::string ws_path = "/ws";
  std::chrono::seconds ping_interval{30};     // protocol-level pings
  std::chrono::seconds handshake_timeout{10}; // HTTP request, WS handshake, close
  size_t max_frame_bytes = 64 * 1024;         // larger: close 1009
  size_t max_http_body = 64 * 1024;           // larger: 413
  /// Memory all sockets' unfinished messages may hold together; a socket
  /// that would exceed it is cut (1008). A message must also complete within
  /// one ping interval.
  size_t max_unfinished_bytes = 64u << 20;
  size_t max_queued_frames = 4096;            // a reader this far behind is
  size_t max_queued_bytes = 4 * 1024 * 1024;  // closed with 1008
  /// Run the actors marked with run_on_io_thread (io_thread.hpp) on the io
  /// thread that wakes them; false: every actor runs on CAF's scheduler.
  bool actors_on_io = true;
  /// PEM certificate chain and private key: when both are set, the port
  /// speaks TLS only (wss://, https://).
  std::string tls_cert_file;
  std::string tls_key_file;
  /// Balancers allowed to name the client (IP addresses or CIDR networks):
  /// by a PROXY header, else the last X-Forwarded-For entry or X-Real-IP.
  /// Limits and logs then see the client's address, not the balancer's.
  std::vector<std::string> trusted_proxies;
  /// Connections from trusted proxies begin with a PROXY protocol header
  /// (v1 or v2); one without it, or one from anybody else with it, is closed.
  bool proxy_protocol = false;
};

/// The transport's metrics, each once: member, kind, exposition name, help,
/// label. The io threads count them in atomics; `beast_server::stats()`,
/// /metrics and the tests read this list.
#define KULLSYNC_TRANSPORT_METRICS(X)                                            \
  X(sockets_open, gauge, "kullsync_transport_sockets_open",                     \
    "WebSockets open at the transport.", "")                                     \
  X(sockets_accepted, counter, "kullsync_transport_sockets_accepted_total",     \
    "WebSockets whose handshake completed.", "")                                 \
  X(frames_written, counter, "kullsync_frames_out_total",                       \
    "WebSocket text frames written to sockets.", "")                             \
  X(bytes_written, counter, "kullsync_bytes_out_total",                         \
    "Bytes of WebSocket frames written, headers included.", "")                  \
  X(socket_sends, counter, "kullsync_socket_sends_total",                       \
    "Socket sends (each gathers every frame queued).", "")                       \
  X(queued_bytes, gauge, "kullsync_output_queued_bytes",                         \
    "Bytes of frames waiting for room in their sockets (the kernel took no "     \
    "more): readers falling behind, before any is cut as a slow consumer.", "")  \
  X(slow_consumers_closed, counter, "kullsync_slow_consumer_closes_total",      \
    "Sockets cut because their output queue passed its bound.", "")              \
  X(slow_messages_closed, counter, "kullsync_slow_message_closes_total",        \
    "Sockets cut for a message that did not complete in time or in memory.", "") \
  X(http_requests, counter, "kullsync_http_requests_total",                     \
    "HTTP requests (not upgrades) read.", "")                                    \
  X(accept_failures, counter, "kullsync_accept_failures_total",                 \
    "Failed accepts (e.g. out of descriptors); accepting pauses 50 ms each.", "") \
  X(proxy_refusals, counter, "kullsync_proxy_refusals_total",                   \
    "Connections closed for a PROXY header from an untrusted peer, a trusted "   \
    "proxy's without one, or a malformed one.", "")                              \
  X(actor_turns_on_io, none, "", "turns of marked actors run by the io threads", "")

KULLSYNC_METRIC_GROUP(transport_metrics, KULLSYNC_TRANSPORT_METRICS)

/// What the transport counted, as of the call.
using beast_server_stats = transport_metrics<uint64_t>;

class beast_server {
public:
  beast_server(caf::actor_system& sys, beast_server_options opts,
               acceptor_actor acceptor, http_handler_actor http);
  ~beast_server();
  beast_server(const beast_server&) = delete;
  beast_server& operator=(const beast_server&) = delete;

  /// Binds and starts the io threads; returns the bound port. Throws
  /// std::system_error when the address cannot be bound, and
  /// std::invalid_argument when the TLS certificate or key does not load or
  /// a trusted proxy is not an address or network.
  uint16_t start();

  /// Stops accepting, closes every WebSocket with 1001 and waits up to
  /// `grace` for the closing handshakes, then stops the io threads.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds{3});

  beast_server_stats stats() const;

  /// The transport's part of a /metrics scrape (atomics only: any thread).
  void write_metrics(metrics::writer& w) const;

  /// The first io thread's context, for other non-blocking I/O of the
  /// process (the cluster's broker links); it runs from start() to stop().
  boost::asio::io_context& io();

  /// The io bridge of that thread: a send from code running there (an
  /// Asio handler of io()) with this as its execution context makes an
  /// actor marked with run_on_io_thread run there too, as the sockets' do;
  /// null when the server's actors run on CAF's threads (actors_on_io off).
  caf::execution_unit* io_unit();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace kullsync

#pragma once

// Private to the server side of kullsync_transports.
//
// One accepted WebSocket. Beast answers the upgrade (with a stream that lives
// only for the handshake); from then on the connection speaks RFC 6455
// itself: it waits for the socket to be readable, reads whatever is there
// into the io thread's scratch buffer and parses every frame of it in one
// pass (ws::frame_reader), handing the session what a pass produced as one
// batch; it appends outgoing frames to the coalescing socket. An idle socket
// holds no buffer and no timer: one wait on the socket.
//
// Its life is one phase at a time (enter() is the only way to change it):
//   handshaking -> open -> closing -> closed,  and handshaking|open -> closed.
// - handshaking: the upgrade request was read; the session attaches, Beast
//   answers with 101. A close asked for meanwhile waits for the handshake.
// - open: frames both ways.
// - closing: we sent our close frame (after the frames queued before it)
//   and wait for the peer's answer.
// - closed: the session has been told; nothing goes to or from it any more.
//   What the socket still owes is sent, then it shuts down and reads until
//   the peer's FIN (or a timer ends it).
// Two ways in: close() starts our closing handshake; end() is everything
// else (the peer's close frame, a violation, a failure, a timeout, a slow
// consumer).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "coalescing_socket.hpp"
#include "frame_queue.hpp"
#include "server_core.hpp"
#include "ws_frame_reader.hpp"
#include "io_socket.hpp"

namespace kullsync::detail {

namespace http = boost::beast::http;

class ws_connection : public std::enable_shared_from_this<ws_connection>,
                      private ws::frame_sink {
public:
  using tcp = net::ip::tcp;
  using upgrade_request = http::request<http::string_body>;
  enum class phase : uint8_t { handshaking, open, closing, closed };

  ws_connection(std::shared_ptr<server_core> core, io_shard& shard,
                io_socket&& socket);
  ~ws_connection() override;

  /// The upgrade request was read; `early` is what the client sent right
  /// behind it. The acceptor learns of the socket now, before the handshake
  /// completes: the client sees its link open only once the session attached
  /// (and so joined its user), so nothing published after that misses it.
  /// `peer`: the client's address.
  void start(upgrade_request req, std::string early, std::string peer);

  // From the socket's actor, on any thread.
  void post_attach(transport_listener_actor l, uint64_t tag, std::string protocol);
  void post_send(shared_frame f);
  void post_credit(uint64_t tag, uint32_t n);
  void post_close(uint16_t code, std::string reason);

  // On the shard's thread.
  void send(const shared_frame& f);
  /// Our close frame after what is queued; the close handshake follows.
  void close(uint16_t code, std::string reason);
  void keepalive();
  coalescing_socket& socket() { return sock_; }
  /// Its slot in the shard's open sockets (io_shard::add_open).
  size_t open_slot = SIZE_MAX;
  /// With the io thread stopped: ends every pending operation, so that their
  /// handlers run (with errors) and release this connection.
  void abort();

private:
  enum class ending : uint8_t {
    echo,  // our close frame, shut down once sent, read and drop to the FIN
    both,  // both close frames exchanged: close the socket once ours is sent
    drop,  // the peer is gone: close the socket once what is owed went
    abort, // the peer is mute: close the socket now
  };

  void enter(phase next);
  void attach(transport_listener_actor l, uint64_t tag, const std::string& protocol);
  void on_handshake(boost::beast::error_code ec);
  void arm_kill_timer();
  void read_on();
  void on_readable(boost::beast::error_code ec);
  void consume(char* data, size_t n);
  void hand_over();
  void on_credit(uint64_t tag, uint32_t n);
  void write_frame(const shared_frame& f);
  void move_queued();
  void end(uint16_t code, std::string reason, ending how);
  void finish(ending how);
  void close_when_sent();
  bool unfinished() const;
  /// Counts what the unfinished message holds; false (and the socket cut)
  /// when the server's bound on such memory is exceeded.
  bool account_held();

  // ws::frame_sink: what the client's frames said.
  void on_message(std::string text) override;
  void on_ping(std::string_view payload) override;
  void on_pong() override { ping_unanswered_ = false; }
  void on_close(uint16_t code, std::string_view reason) override;
  void on_violation(uint16_t code, const char* reason) override;

  std::shared_ptr<server_core> core_;
  io_shard& shard_;
  coalescing_socket sock_;
  ws::frame_reader reader_;
  phase phase_ = phase::handshaking;
  // The start of a frame whose rest has not arrived, or frames read but not
  // parsed for want of credit (`stalled_`); empty while idle.
  std::string partial_;
  bool stalled_ = false;
  bool reading_ = false;   // a wait for readability is outstanding
  bool versioned_ = false; // the handshake agreed on a subprotocol
  // Messages of the parse pass under way (a local of consume()), handed to
  // the session together.
  frame_batch* batch_ = nullptr;
  uint32_t credit_ = 0; // messages the session still takes
  // The upgrade request, the stream that answers it and the subprotocol;
  // released once the handshake is done (an idle socket keeps none of it).
  struct handshake;
  std::unique_ptr<handshake> handshake_;
  transport_listener_actor listener_;
  uint64_t tag_ = 0;
  uint8_t ping_ticks_ = 0;   // keepalive sweeps since our last ping
  bool ping_unanswered_ = false;    // our last ping (sent), until a pong comes
  bool stalled_since_ping_ = false; // not read for want of credit since it
  uint8_t unsent_pings_ = 0;        // pings in a row that found the buffer full
  // An unfinished message: sweeps it survived with no message completed,
  // and the bytes it holds (counted server-wide, bounded).
  uint8_t unfinished_ticks_ = 0;
  uint32_t messages_in_ = 0, messages_at_sweep_ = 0;
  size_t held_ = 0;
  // Our close: asked for before the handshake completed (applied then), or
  // under way (reported if the peer just hangs up). Rare: kept on the heap.
  std::unique_ptr<std::pair<uint16_t, std::string>> our_close_;
  frame_queue queue_;
  size_t queued_bytes_ = 0;
  // Ends a handshake, a close or a drain the peer lets hang; only while one
  // is under way (an idle socket keeps no timer: 120 bytes).
  std::unique_ptr<net::steady_timer> kill_timer_;
};

} // namespace kullsync::detail

#pragma once

// Private to the server side of kullsync_transports: what the server's parts
// share. Each io thread is a shard that serves its sockets alone (accepted
// round robin): their reads and writes, the frames actors send them (one
// outbox per shard), the actor turns it runs and its keepalive sweep. No
// socket is touched by two threads, so there are no strands.

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "caf_bridge.hpp"
#include "client_address.hpp"
#include "kullsync/log.hpp"
#include "kullsync/metrics.hpp"
#include "kullsync/transports/beast_server.hpp"

namespace boost::asio::ssl {
class context;
}

namespace kullsync::detail {

namespace net = boost::asio;

class ws_connection;
struct server_core;

/// The transport's metrics (beast_server.hpp) as the io threads count them,
/// and the io loop's lag.
struct counters : transport_metrics<std::atomic<uint64_t>> {
  /// How late the io threads ran a timer due every 250 ms: time spent in
  /// handlers that kept the loop from anything else.
  metrics::histogram loop_lag{metrics::histogram::latency_seconds};
};

/// Whether the io threads still take work. Once the server has stopped, a
/// handler posted to an io_context would never run and never be destroyed:
/// it holds its connection, which holds the io_context. So after the stop
/// such handlers are dropped, actor turns go to CAF's scheduler, and the
/// outboxes take no frames.
class io_gate {
public:
  /// Runs `f` (which posts to an io thread) unless the gate is closed; true
  /// if it ran. A post is either run by stop()'s last poll or refused.
  template <class F>
  bool if_open(F&& f) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return false;
    f();
    return true;
  }
  /// net::post, unless the gate is closed (the handler is then dropped).
  template <class Context, class Handler>
  void post(Context& ctx, Handler&& h) {
    if_open([&] { net::post(ctx, std::forward<Handler>(h)); });
  }
  void close() {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
  }
  bool closed() const { return closed_; }

private:
  std::mutex mtx_;
  std::atomic<bool> closed_{false};
};

/// One io thread and the sockets it serves.
class io_shard final : public io_unit::host {
public:
  explicit io_shard(server_core& core);

  net::io_context ioc{1};
  io_unit unit;

  bool post(io_turn& t) override;

  /// A frame for `c` (one of this shard's sockets), from any thread. Frames
  /// wait in the outbox; a drain hands them to their sockets, each corked
  /// until all of its frames are in, so they leave in one send. On this
  /// thread the loop drains when idle; from another thread one posted drain
  /// serves every frame that comes meanwhile, whatever its socket.
  void send(std::shared_ptr<ws_connection> c, shared_frame f);

  /// Closes `c` with `code` after the frames sent to it before, from any
  /// thread: the close waits in the outbox behind them (posted on its own
  /// it would overtake them, and they would be dropped as the socket closes).
  void close(std::shared_ptr<ws_connection> c, uint16_t code, std::string reason);

  bool on_this_thread() {
    return ioc.get_executor().running_in_this_thread();
  }

  /// The io thread's loop (see io_shard.cpp).
  void run();

  /// Every half ping interval, each open socket counts the sweeps it stayed
  /// silent (ws_connection::keepalive): one timer for all of them.
  void keepalive_sweep();

  // Open sockets (for the sweep and stop()) and every connection object
  // (stop() aborts what is left); under `mtx`. Only this shard's thread
  // changes `open` (the sweep reads it without the lock), and stop() once
  // that thread was joined. A vector, each socket knowing its slot: a sweep
  // over tens of thousands walks memory in order instead of a tree.
  std::mutex mtx;
  std::vector<std::shared_ptr<ws_connection>> open;
  std::set<ws_connection*> live;
  void add_open(std::shared_ptr<ws_connection> c);
  void remove_open(ws_connection& c);

  net::steady_timer keepalive_timer{ioc};
  /// Every 250 ms, how late this thread ran a due timer (core's loop_lag).
  void measure_lag();
  net::steady_timer lag_timer{ioc};
  std::thread thread;

  /// With the io thread stopped: drops the frames nobody will send (their
  /// entries hold connections).
  void clear_outbox();

private:
  /// A frame for a socket, or (`close`) its close with `close_code`, whose
  /// reason is then the frame's text.
  struct outgoing {
    std::shared_ptr<ws_connection> conn;
    shared_frame frame;
    bool close = false;
    uint16_t close_code = 0;
  };
  void enqueue(outgoing o);
  void drain_outbox();

  server_core& core_;
  std::mutex outbox_mtx_;
  std::vector<outgoing> outbox_;
  std::vector<outgoing> drained_;
};

/// What connections share with the server. It owns the io_contexts: socket
/// actors may outlive the server object, and their connections must still
/// find their context (stopped, but alive) until the last one is gone.
struct server_core {
  server_core(caf::actor_system& s, beast_server_options o, acceptor_actor a,
              http_handler_actor h);

  caf::actor_system& sys;
  beast_server_options opts;
  acceptor_actor acceptor;
  http_handler_actor http;
  counters stats;
  io_gate gate;
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<io_shard>> shards;
  std::shared_ptr<net::ssl::context> tls; // set: every socket speaks TLS
  address_set trusted;                    // --trusted-proxies (set by start())
  std::atomic<int64_t> proxy_refusal_logged_ms{0};
  std::atomic<size_t> unfinished_bytes{0}; // held by incomplete messages
  std::shared_ptr<spdlog::logger> log = log::get("transport.server");

  /// The shard that serves the next accepted socket.
  io_shard& next_shard() {
    return *shards[next_++ % shards.size()];
  }

private:
  std::atomic<size_t> next_{0};
};

} // namespace kullsync::detail

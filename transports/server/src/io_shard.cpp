#include "server_core.hpp"

#include <chrono>

#include "ws_connection.hpp"

namespace kullsync::detail {

server_core::server_core(caf::actor_system& s, beast_server_options o,
                         acceptor_actor a, http_handler_actor h)
  : sys(s), opts(std::move(o)), acceptor(std::move(a)), http(std::move(h)) {
  for (size_t i = 0; i < std::max<size_t>(1, opts.io_threads); ++i)
    shards.push_back(std::make_unique<io_shard>(*this));
}

io_shard::io_shard(server_core& core)
  : unit(core.sys, *this, core.opts.actors_on_io, core.stats.actor_turns_on_io),
    core_(core) {
}

bool io_shard::post(io_turn& t) {
  return core_.gate.if_open([&] { net::post(ioc, std::move(t)); });
}

void io_shard::send(std::shared_ptr<ws_connection> c, shared_frame f) {
  enqueue(outgoing{std::move(c), std::move(f)});
}

void io_shard::close(std::shared_ptr<ws_connection> c, uint16_t code, std::string reason) {
  enqueue(outgoing{std::move(c), make_shared_frame(std::move(reason)), true, code});
}

void io_shard::enqueue(outgoing o) {
  {
    std::lock_guard<std::mutex> guard{outbox_mtx_};
    if (core_.gate.closed())
      return; // the server has stopped: the entry would keep `c` alive
    outbox_.push_back(std::move(o));
    if (outbox_.size() > 1)
      return; // a drain is posted, or this thread is busy and will drain
  }
  // On this thread the loop drains once nothing else is ready (run); from
  // elsewhere it must be woken.
  if (!on_this_thread())
    core_.gate.post(ioc, [this] { drain_outbox(); });
}

void io_shard::drain_outbox() {
  {
    std::lock_guard<std::mutex> guard{outbox_mtx_};
    drained_.swap(outbox_);
  }
  std::vector<coalescing_socket*> corked;
  for (auto& [conn, frame, close, close_code] : drained_) {
    auto& sock = conn->socket();
    if (!sock.corked()) {
      sock.cork();
      corked.push_back(&sock);
    }
    if (close)
      conn->close(close_code, frame.str());
    else
      conn->send(frame);
  }
  for (auto* sock : corked)
    sock->uncork();
  drained_.clear(); // after uncork: the entries keep the sockets alive
}

void io_shard::clear_outbox() {
  std::lock_guard<std::mutex> guard{outbox_mtx_};
  outbox_.clear();
}

/// The io thread's loop. The outbox is drained when nothing else is ready:
/// every frame that one pass over the ready sockets produced for a socket
/// leaves in one send, while a quiet server still sends at once. A pass is
/// not cut short: a read's frames reach the hub through the session's turn,
/// posted behind the handlers already queued, so a user's updates read
/// together are routed together only by the pass's end. Under overload that
/// never goes idle, a drain every `drain_every` handlers (a few ms) bounds
/// how long frames wait.
void io_shard::run() {
  constexpr size_t drain_every = 4096;
  size_t ran = 0;
  auto outbox_empty = [this] {
    std::lock_guard<std::mutex> guard{outbox_mtx_};
    return outbox_.empty();
  };
  while (!ioc.stopped()) {
    if (ioc.poll_one() > 0 && ++ran < drain_every)
      continue;
    ran = 0;
    if (!outbox_empty())
      drain_outbox();
    else if (ioc.run_one() == 0)
      break; // stopped, or out of work
  }
}

void io_shard::measure_lag() {
  constexpr auto period = std::chrono::milliseconds{250};
  auto due = std::chrono::steady_clock::now() + period;
  lag_timer.expires_at(due);
  lag_timer.async_wait([this, due](boost::system::error_code ec) {
    if (ec || core_.stopping)
      return;
    std::chrono::duration<double> late = std::chrono::steady_clock::now() - due;
    core_.stats.loop_lag.observe(late.count());
    measure_lag();
  });
}

void io_shard::add_open(std::shared_ptr<ws_connection> c) {
  std::lock_guard<std::mutex> guard{mtx};
  c->open_slot = open.size();
  open.push_back(std::move(c));
}

void io_shard::remove_open(ws_connection& c) {
  std::unique_lock<std::mutex> guard{mtx};
  auto i = c.open_slot;
  if (i >= open.size() || open[i].get() != &c)
    return;
  auto gone = std::move(open[i]);
  if (i + 1 != open.size()) {
    open[i] = std::move(open.back());
    open[i]->open_slot = i;
  }
  open.pop_back();
  c.open_slot = SIZE_MAX;
  // Released after the lock: ~ws_connection takes `mtx`. (Every caller
  // holds a handle of its own: a handler's, or keepalive()'s `self`.)
  guard.unlock();
}

void io_shard::keepalive_sweep() {
  if (core_.opts.ping_interval.count() <= 0)
    return; // no protocol pings
  keepalive_timer.expires_after(std::chrono::milliseconds{core_.opts.ping_interval} / 2);
  keepalive_timer.async_wait([this](boost::system::error_code ec) {
    if (ec || core_.stopping)
      return;
    // Backwards: a socket that closes leaves its slot to the last one,
    // which was swept already. No handle is taken per socket (a socket
    // that ends holds itself): an atomic increment on each socket's cold
    // line would keep the CPU from overlapping one socket's cache misses
    // with the next's.
    for (size_t i = open.size(); i-- > 0;) {
      if (i < open.size())
        open[i]->keepalive();
    }
    keepalive_sweep();
  });
}

} // namespace kullsync::detail

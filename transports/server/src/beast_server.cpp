// The server's listener: the accept loop, the io threads, start and stop.
#include "kullsync/transports/beast_server.hpp"

#include <stdexcept>
#include <thread>

#include <boost/asio/ip/tcp.hpp>

#include "proxy_preface.hpp"
#include "io_socket.hpp"
#include "server_core.hpp"
#include "tls_terminator.hpp"
#include "ws_connection.hpp"

namespace kullsync {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using detail::io_shard;
using detail::server_core;
using detail::ws_connection;

struct beast_server::impl : std::enable_shared_from_this<beast_server::impl> {
  std::shared_ptr<server_core> core;
  io_shard& home; // the first shard accepts for all of them
  tcp::acceptor acceptor;
  net::steady_timer accept_pause; // after a failed accept (out of descriptors)
  std::chrono::steady_clock::time_point accept_logged{};
  uint64_t accept_failures_unlogged = 0;
  bool started = false;

  impl(caf::actor_system& sys, beast_server_options o, acceptor_actor a,
       http_handler_actor h)
    : core(std::make_shared<server_core>(sys, std::move(o), std::move(a),
                                         std::move(h))),
      home(*core->shards.front()), acceptor(home.ioc), accept_pause(home.ioc) {
  }

  void do_accept() {
    auto& shard = core->next_shard();
    acceptor.async_accept(shard.ioc, [self = shared_from_this(), &shard](
                                       boost::system::error_code ec, detail::io_socket s) {
      self->on_accept(ec, shard, std::move(s));
    });
  }

  void on_accept(boost::system::error_code ec, io_shard& shard, detail::io_socket s) {
    if (ec == net::error::operation_aborted || core->stopping)
      return;
    if (ec)
      return accept_failed(ec);
    {
      // kullsync gathers a socket's frames itself; Nagle's algorithm would
      // hold a small send back until the previous one is acknowledged, and
      // the client delays that ACK by up to 40 ms.
      boost::system::error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
      auto serve = [core = core, &shard](detail::io_socket s) {
        detail::start_connection(core, shard, std::move(s));
      };
      if (&shard == &home)
        serve(std::move(s));
      else
        core->gate.post(shard.ioc, [serve, s = std::move(s)]() mutable { serve(std::move(s)); });
    }
    do_accept();
  }

  /// Out of descriptors and the like: the pending connection stays in the
  /// backlog, so accepting again at once would spin. Pause 50 ms (the open
  /// sockets are served meanwhile), count, log once every 10 s.
  void accept_failed(boost::system::error_code ec) {
    ++core->stats.accept_failures;
    ++accept_failures_unlogged;
    auto now = std::chrono::steady_clock::now();
    if (now - accept_logged >= std::chrono::seconds{10}) {
      core->log->warn("accept failed {} time(s): {}; pausing accepts 50 ms at a time",
                      accept_failures_unlogged, ec.message());
      accept_logged = now;
      accept_failures_unlogged = 0;
    }
    accept_pause.expires_after(std::chrono::milliseconds{50});
    accept_pause.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->core->stopping)
        self->do_accept();
    });
  }

  /// Every shard's open sockets, from any thread.
  std::vector<std::shared_ptr<ws_connection>> open_sockets() {
    std::vector<std::shared_ptr<ws_connection>> all;
    for (auto& s : core->shards) {
      std::lock_guard<std::mutex> guard{s->mtx};
      all.insert(all.end(), s->open.begin(), s->open.end());
    }
    return all;
  }
};

beast_server::beast_server(caf::actor_system& sys, beast_server_options opts,
                           acceptor_actor acceptor, http_handler_actor http)
  : impl_(std::make_shared<impl>(sys, std::move(opts), std::move(acceptor),
                                 std::move(http))) {
}

beast_server::~beast_server() {
  stop(std::chrono::milliseconds{0});
}

uint16_t beast_server::start() {
  auto& o = impl_->core->opts;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    if (o.tls_cert_file.empty() || o.tls_key_file.empty())
      throw std::invalid_argument("TLS needs both --tls-cert and --tls-key");
    impl_->core->tls = detail::make_tls_context(o.tls_cert_file, o.tls_key_file);
  }
  std::string proxies;
  for (auto& p : o.trusted_proxies)
    proxies += (proxies.empty() ? "" : ",") + p;
  try {
    impl_->core->trusted = detail::address_set::parse(proxies);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string{"--trusted-proxies: "} + e.what());
  }
  if (o.proxy_protocol && impl_->core->trusted.empty())
    throw std::invalid_argument("--proxy-protocol on needs --trusted-proxies: only they "
                                "may send a PROXY header");
  auto addr = net::ip::make_address(o.host);
  tcp::endpoint ep{addr, o.port};
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol());
  acc.set_option(net::socket_base::reuse_address(true));
  acc.bind(ep);
  acc.listen(net::socket_base::max_listen_connections);
  auto port = acc.local_endpoint().port();
  impl_->do_accept();
  for (auto& s : impl_->core->shards) {
    s->keepalive_sweep();
    s->measure_lag();
    s->thread = std::thread{[shard = s.get(), keep = impl_] { shard->run(); }};
  }
  impl_->started = true;
  impl_->core->log->info("listening on {}:{} ({}, WebSocket path {}, {} io thread(s))",
                         o.host, port, impl_->core->tls ? "TLS" : "plain", o.ws_path,
                         impl_->core->shards.size());
  return port;
}

void beast_server::stop(std::chrono::milliseconds grace) {
  auto& core = *impl_->core;
  if (!impl_->started)
    return;
  impl_->started = false;
  if (!core.stopping.exchange(true)) {
    net::post(impl_->home.ioc, [p = impl_] {
      boost::system::error_code ignored;
      p->acceptor.close(ignored);
      p->accept_pause.cancel();
    });
    for (auto& s : core.shards)
      net::post(s->ioc, [shard = s.get()] {
        shard->keepalive_timer.cancel();
        shard->lag_timer.cancel();
      });
    for (auto& c : impl_->open_sockets())
      c->post_close(close_code::going_away, "server shutting down");
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline && !impl_->open_sockets().empty())
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  for (auto& s : core.shards)
    s->ioc.stop();
  for (auto& s : core.shards)
    if (s->thread.joinable())
      s->thread.join();
  // Pending handlers hold their connections, and connections hold the core:
  // abort what is left and run the aborted handlers here, so that nothing
  // (io_contexts, acceptor and HTTP actor handles) outlives the server.
  for (auto& s : core.shards) {
    std::vector<std::shared_ptr<ws_connection>> open;
    {
      std::lock_guard<std::mutex> guard{s->mtx};
      open.swap(s->open);
      // Under the lock: a connection whose last handle a CAF thread drops
      // now waits in its destructor until this is done.
      for (auto* c : s->live)
        c->abort();
    }
    open.clear(); // outside the lock: ~ws_connection takes it
  }
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
  auto poll_all = [&] {
    for (auto& s : core.shards) {
      s->ioc.restart();
      s->ioc.poll();
    }
  };
  poll_all();
  // From now on nothing is posted here (io_gate); run what came meanwhile.
  core.gate.close();
  poll_all();
  // Frames for sockets that are gone: their entries hold the connections.
  // (io_shard::send reads the gate under the outbox's lock, so none come after.)
  for (auto& s : core.shards)
    s->clear_outbox();
}

boost::asio::io_context& beast_server::io() {
  return impl_->core->shards.front()->ioc;
}

caf::execution_unit* beast_server::io_unit() {
  return impl_->core->shards.front()->unit.context();
}

beast_server_stats beast_server::stats() const {
  return snapshot_of(impl_->core->stats);
}

void beast_server::write_metrics(metrics::writer& w) const {
  auto& c = impl_->core->stats;
  write_group(w, c);
  w.gauge("kullsync_unfinished_message_bytes", "Memory held by incomplete client messages.",
          static_cast<double>(impl_->core->unfinished_bytes.load()));
  w.histogram("kullsync_io_loop_lag_seconds",
              "How late an io thread ran a timer due every 250 ms.", c.loop_lag);
}

} // namespace kullsync

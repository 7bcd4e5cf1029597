#include "proxy_preface.hpp"

#include <array>
#include <chrono>

#include <boost/asio/steady_timer.hpp>

#include "client_address.hpp"
#include "http_session.hpp"
#include "server_core.hpp"
#include "tls_terminator.hpp"

namespace kullsync::detail {

using tcp = net::ip::tcp;

namespace {

void serve(const std::shared_ptr<server_core>& core, io_shard& shard, io_socket&& s,
           peer_info peer, std::string early) {
  if (core->tls)
    start_tls_session(core, shard, std::move(s), std::move(peer), std::move(early));
  else
    start_http_session(core, shard, std::move(s), std::move(peer), std::move(early));
}

/// Counted always; logged at most once every 10 s with how many came
/// meanwhile: a flood of them must not flood the log.
void log_refusal(server_core& core, const std::string& peer, const std::string& why) {
  auto n = ++core.stats.proxy_refusals;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
               .count();
  auto last = core.proxy_refusal_logged_ms.load();
  if (now - last < 10'000 || !core.proxy_refusal_logged_ms.compare_exchange_strong(last, now))
    return;
  core.log->warn("{}: connection closed: {} ({} refused so far)", peer, why, n);
}

/// Reads what the socket begins with until it is known whether that is a
/// PROXY header, within the handshake timeout.
class preface : public std::enable_shared_from_this<preface> {
public:
  preface(const std::shared_ptr<server_core>& core, io_shard& shard, io_socket&& s,
          peer_info peer)
    : core_(core), shard_(shard), socket_(std::move(s)), timer_(shard.ioc),
      peer_(std::move(peer)) {}

  void start() {
    timer_.expires_after(core_.lock()->opts.handshake_timeout);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->decided_)
        return; // cancelled, or the preface was read just as it fired
      // A peer that never completes its preface holds a descriptor: closed,
      // counted and logged like any other refusal.
      if (auto core = self->core_.lock())
        log_refusal(*core, self->peer_.address,
                    "no complete PROXY header or request within --handshake-timeout");
      boost::system::error_code ignored;
      self->socket_.close(ignored); // the read fails: nothing more is done
    });
    do_read();
  }

private:
  void do_read() {
    socket_.async_read_some(net::buffer(chunk_), [self = shared_from_this()](
                                                   boost::system::error_code ec, size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(boost::system::error_code ec, size_t n) {
    if (ec) { // reset, closed, or the timer closed it
      timer_.cancel();
      return;
    }
    bytes_.append(chunk_.data(), n);
    auto h = parse_proxy_header(bytes_);
    using outcome = proxy_header::outcome;
    if (h.result == outcome::need_more)
      return do_read();
    decided_ = true;
    timer_.cancel();
    auto core = core_.lock();
    if (!core)
      return;
    if (h.result == outcome::invalid)
      return refuse(*core, h.error);
    if (h.result == outcome::found && !peer_.trusted)
      return refuse(*core, "a PROXY header from a peer that is not in --trusted-proxies");
    if (h.result == outcome::absent && peer_.trusted)
      return refuse(*core, "no PROXY header from a trusted proxy (--proxy-protocol on)");
    if (h.result == outcome::found) {
      if (!h.source.empty())
        peer_.address = std::move(h.source);
      peer_.proxied = true;
      bytes_.erase(0, h.length);
    }
    serve(core, shard_, std::move(socket_), std::move(peer_), std::move(bytes_));
  }

  void refuse(server_core& core, const std::string& why) {
    log_refusal(core, peer_.address, why);
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  // Not the core itself: a pending read must not keep the core (and so
  // its io_context) alive.
  std::weak_ptr<server_core> core_;
  io_shard& shard_;
  io_socket socket_;
  net::steady_timer timer_;
  peer_info peer_;
  std::array<char, 512> chunk_;
  std::string bytes_;
  bool decided_ = false; // the preface was read: the timer has nothing to do
};

} // namespace

void start_connection(const std::shared_ptr<server_core>& core, io_shard& shard,
                      io_socket&& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec)
    return; // gone before it was served
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) // a dual-stack listener's IPv4 client
    a = net::ip::make_address_v4(net::ip::v4_mapped, a.to_v6());
  peer_info peer;
  peer.address = a.to_string();
  peer.trusted = !core->trusted.empty() && core->trusted.contains(peer.address);
  if (!core->opts.proxy_protocol)
    return serve(core, shard, std::move(socket), std::move(peer), {});
  std::make_shared<preface>(core, shard, std::move(socket), std::move(peer))->start();
}

} // namespace kullsync::detail

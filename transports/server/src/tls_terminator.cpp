#include "tls_terminator.hpp"

#include <array>
#include <stdexcept>

#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "http_session.hpp"
#include "server_core.hpp"

namespace kullsync::detail {

namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using local = net::local::stream_protocol;

std::shared_ptr<ssl::context> make_tls_context(const std::string& cert_file,
                                               const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                   | ssl::context::no_sslv3 | ssl::context::no_tlsv1
                   | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  // An idle connection gives OpenSSL's read and write buffers back instead
  // of keeping them for its next record.
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec)
    throw std::invalid_argument("--tls-cert: cannot load '" + cert_file + "': " + ec.message());
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec)
    throw std::invalid_argument("--tls-key: cannot load '" + key_file + "': " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::invalid_argument("--tls-key: '" + key_file + "' does not match the certificate");
  return ctx;
}

namespace {

/// One TLS socket: the handshake, then two relays (TLS -> plaintext pair,
/// plaintext pair -> TLS), each with one operation outstanding, so that a
/// side that does not read holds the other back as TCP would.
class tls_session : public std::enable_shared_from_this<tls_session> {
public:
  tls_session(std::shared_ptr<server_core> core, io_shard& shard, io_socket&& s,
              ssl::context& ctx, peer_info peer, std::string early)
    : core_(core), shard_(shard), tls_(std::move(s), ctx), inner_(shard.ioc),
      timer_(shard.ioc), peer_(std::move(peer)), early_(std::move(early)) {}

  void start() {
    timer_.expires_after(core_.lock()->opts.handshake_timeout);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->handshaken_) {
        boost::system::error_code ignored;
        self->tls_.next_layer().close(ignored);
      }
    });
    // What was read behind a PROXY header is the start of the handshake.
    tls_.async_handshake(ssl::stream_base::server, net::buffer(early_),
                         [self = shared_from_this()](boost::system::error_code ec, size_t) {
                           self->on_handshake(ec);
                         });
  }

private:
  void on_handshake(boost::system::error_code ec) {
    handshaken_ = true;
    timer_.cancel();
    auto core = core_.lock();
    if (ec || !core) {
      if (core && ec != net::error::operation_aborted)
        core->log->debug("TLS handshake with {} failed: {}", peer_.address, ec.message());
      return;
    }
    local::socket outer{shard_.ioc};
    net::local::connect_pair(inner_, outer, ec);
    if (ec) {
      core->log->warn("TLS socket of {} dropped: no socket pair: {}", peer_.address,
                      ec.message());
      return;
    }
    // The plaintext end goes the way of an accepted TCP socket; it is a
    // stream socket either way, and the session is told the real address.
    io_socket plain{shard_.ioc};
    plain.assign(tcp::v4(), outer.release(), ec);
    if (ec)
      return;
    start_http_session(core, shard_, std::move(plain), peer_, {});
    read_tls();
    read_plain();
    watch_plain_end();
  }

  // The server closing its end of the pair (a socket it cut, or its close
  // handshake done) hangs the pair up even while the relay is not reading
  // it: a TLS peer that stopped reading holds a write to it for ever, and
  // the relay would keep both descriptors and its buffers as long as TCP
  // lives. So the hang-up, or the client leaving, starts the ending's clock.
  void watch_plain_end() {
    inner_.async_wait(local::socket::wait_error,
                      [self = shared_from_this()](boost::system::error_code ec) {
                        if (!ec)
                          self->bound_ending();
                      });
  }

  /// What is left to relay, and TLS's close_notify, get the handshake
  /// timeout (the bound of every ending); then both sockets close.
  void bound_ending() {
    auto core = core_.lock();
    if (ending_ || !core)
      return;
    ending_ = true;
    timer_.expires_after(core->opts.handshake_timeout);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec)
        return;
      if (auto core = self->core_.lock())
        core->log->debug("TLS socket of {} closed: its ending took longer than {} s",
                         self->peer_.address, core->opts.handshake_timeout.count());
      self->close_both();
    });
  }

  void close_both() {
    boost::system::error_code ignored;
    timer_.cancel();
    tls_.next_layer().close(ignored);
    inner_.close(ignored);
  }

  void read_tls() {
    tls_.async_read_some(net::buffer(in_), [self = shared_from_this()](
                                             boost::system::error_code ec, size_t n) {
      if (ec) { // the client left (close_notify, reset): the server reads EOF
        boost::system::error_code ignored;
        self->inner_.shutdown(local::socket::shutdown_send, ignored);
        self->bound_ending();
        return;
      }
      net::async_write(self->inner_, net::buffer(self->in_.data(), n),
                       [self](boost::system::error_code ec, size_t) {
                         if (!ec)
                           self->read_tls();
                       });
    });
  }

  void read_plain() {
    inner_.async_read_some(net::buffer(out_), [self = shared_from_this()](
                                                boost::system::error_code ec, size_t n) {
      if (ec) { // the server is done with the socket: close_notify, then close
        self->bound_ending(); // a peer that does not read holds close_notify
        self->tls_.async_shutdown([self](boost::system::error_code) { self->close_both(); });
        return;
      }
      net::async_write(self->tls_, net::buffer(self->out_.data(), n),
                       [self](boost::system::error_code ec, size_t) {
                         if (ec) {
                           self->close_both();
                           return;
                         }
                         self->read_plain();
                       });
    });
  }

  // Not the core itself: a pending operation in the core's io_context must
  // not keep the core (and so the io_context) alive.
  std::weak_ptr<server_core> core_;
  io_shard& shard_;
  ssl::stream<io_socket> tls_;
  local::socket inner_;
  net::steady_timer timer_;
  bool handshaken_ = false;
  bool ending_ = false; // timer_ bounds the ending
  peer_info peer_;
  std::string early_;
  std::array<char, 16 * 1024> in_;
  std::array<char, 16 * 1024> out_;
};

} // namespace

void start_tls_session(const std::shared_ptr<server_core>& core, io_shard& shard,
                       io_socket&& socket, peer_info peer, std::string early) {
  std::make_shared<tls_session>(core, shard, std::move(socket), *core->tls, std::move(peer),
                                std::move(early))
    ->start();
}

} // namespace kullsync::detail

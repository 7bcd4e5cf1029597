#include "kullsync/transports/beast_transport.hpp"

#include <deque>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"
#include "client_io.hpp"
#include "kullsync/messages/ws_url.hpp"

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace kullsync {

namespace {

/// The TLS settings of one transport.
std::shared_ptr<ssl::context> make_tls(const beast_transport_options& o) {
  auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
  tls->set_default_verify_paths();
  if (!o.ca_file.empty())
    tls->load_verify_file(o.ca_file);
  tls->set_verify_mode(o.insecure ? ssl::verify_none : ssl::verify_peer);
  return tls;
}

} // namespace

client_io make_client_io(size_t threads) {
  client_io io;
  io.rt = std::make_shared<client_io::runtime>(std::max<size_t>(1, threads));
  return io;
}

namespace {

/// One link attempt: resolve, connect, (TLS), upgrade, then frames.
class client_link_base {
public:
  virtual ~client_link_base() = default;
  virtual void start(detail::url_parts url, header_list headers) = 0;
  virtual void send(shared_frame f) = 0;
  virtual void close(uint16_t code, std::string reason) = 0;
  /// The listener handled `n` more frames of link `tag`.
  virtual void credit(uint64_t tag, uint32_t n) = 0;
  /// Stops reporting to the listener (the link was replaced).
  virtual void abandon() = 0;
};

beast_transport_options without_io(beast_transport_options o) {
  o.io = {};
  return o;
}

template <class Stream>
class client_link : public client_link_base,
                    public std::enable_shared_from_this<client_link<Stream>> {
public:
  template <class... Ts>
  client_link(net::any_io_executor ex, const beast_transport_options& opts,
              transport_listener_actor l, uint64_t tag, std::shared_ptr<void> keep,
              Ts&&... stream_args)
    : keep_(std::move(keep)), opts_(without_io(opts)), resolver_(ex),
      ws_(ex, std::forward<Ts>(stream_args)...), listener_(std::move(l)), tag_(tag) {
  }

  void start(detail::url_parts url, header_list headers) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(),
                                   url = std::move(url),
                                   headers = std::move(headers)]() mutable {
      self->url_ = std::move(url);
      self->headers_ = std::move(headers);
      self->do_resolve();
    });
  }

  void send(shared_frame f) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), f = std::move(f)] {
      if (!self->open_ || self->closing_)
        return;
      self->queue_.push_back(f);
      if (!self->writing_)
        self->do_write();
    });
  }

  void close(uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), code,
                                   reason = std::move(reason)] {
      self->do_close(code, reason);
    });
  }

  void credit(uint64_t tag, uint32_t n) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), tag, n] {
      if (tag != self->tag_)
        return;
      bool stalled = self->credit_ == 0;
      self->credit_ = std::min<uint32_t>(flow::window, self->credit_ + n);
      if (stalled && self->open_ && !self->reported_)
        self->do_read();
    });
  }

  void abandon() override {
    net::post(ws_.get_executor(), [self = this->shared_from_this()] {
      self->reported_ = true;
      self->listener_ = nullptr;
      self->do_close(close_code::normal, "replaced");
    });
  }

private:
  auto& tcp_layer() { return beast::get_lowest_layer(ws_); }

  void do_resolve() {
    tcp_layer().expires_after(opts_.connect_timeout);
    resolver_.async_resolve(url_.host, url_.port,
                            beast::bind_front_handler(&client_link::on_resolve,
                                                      this->shared_from_this()));
  }

  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec)
      return fail("resolve " + url_.host, ec);
    tcp_layer().async_connect(results,
                              beast::bind_front_handler(&client_link::on_connect,
                                                        this->shared_from_this()));
  }

  void on_connect(beast::error_code ec, tcp::endpoint) {
    if (ec)
      return fail("connect " + url_.host + ":" + url_.port, ec);
    tcp_layer().socket().set_option(tcp::no_delay(true));
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      do_upgrade();
    } else {
      auto& tls = ws_.next_layer();
      if (!SSL_set_tlsext_host_name(tls.native_handle(), url_.host.c_str()))
        return fail("TLS SNI", beast::error_code{static_cast<int>(::ERR_get_error()),
                                                 net::error::get_ssl_category()});
      if (!opts_.insecure)
        tls.set_verify_callback(ssl::host_name_verification(url_.host));
      tls.async_handshake(ssl::stream_base::client,
                          beast::bind_front_handler(&client_link::on_tls,
                                                    this->shared_from_this()));
    }
  }

  void on_tls(beast::error_code ec) {
    if (ec)
      return fail("TLS handshake with " + url_.host, ec);
    do_upgrade();
  }

  void do_upgrade() {
    tcp_layer().expires_never();
    auto t = websocket::stream_base::timeout::suggested(beast::role_type::client);
    t.handshake_timeout = opts_.handshake_timeout;
    ws_.set_option(t);
    ws_.read_message_max(opts_.max_frame_bytes);
    ws_.set_option(websocket::stream_base::decorator(
      [headers = headers_](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "kullsync");
        for (auto& [k, v] : headers)
          req.set(k, v);
      }));
    auto host = url_.host;
    if (!((url_.tls && url_.port == "443") || (!url_.tls && url_.port == "80")))
      host += ":" + url_.port;
    res_.result(0u); // stays 0 unless the server answers
    ws_.async_handshake(res_, host, url_.target,
                        beast::bind_front_handler(&client_link::on_upgrade,
                                                  this->shared_from_this()));
  }

  void on_upgrade(beast::error_code ec) {
    if (ec && res_.result_int() != 0) // the server answered, but not 101: say what
      return fail("WebSocket handshake (HTTP " + std::to_string(res_.result_int()) + " "
                    + std::string{res_.reason()} + ")",
                  ec);
    if (ec)
      return fail("WebSocket handshake", ec);
    open_ = true;
    if (closing_) // closed while dialing
      return do_close(pending_.first, pending_.second);
    if (listener_)
      caf::anon_send(listener_, opened_atom::value, tag_,
                     std::string{res_[beast::http::field::sec_websocket_protocol]});
    res_ = {};
    do_read();
  }

  void do_read() {
    ws_.async_read(buf_, beast::bind_front_handler(&client_link::on_read,
                                                   this->shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec)
      return report(ec);
    // Beast reads one message at a time: each goes as a batch of one.
    if (listener_)
      caf::anon_send(listener_, frame_atom::value, tag_,
                     frame_batch{beast::buffers_to_string(buf_.data())});
    buf_.consume(buf_.size());
    if (--credit_ > 0)
      do_read(); // else the listener's credit resumes reading
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(queue_.front().str()),
                    beast::bind_front_handler(&client_link::on_write,
                                              this->shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    queue_.pop_front();
    writing_ = false;
    if (ec)
      return report(ec);
    if (closing_)
      return do_close(pending_.first, pending_.second);
    if (!queue_.empty())
      do_write();
  }

  void do_close(uint16_t code, const std::string& reason) {
    if (close_sent_)
      return;
    closing_ = true;
    pending_ = {code, reason};
    if (!open_) {
      // Still dialing: cancel; the failing step reports.
      beast::error_code ignored;
      resolver_.cancel();
      tcp_layer().socket().close(ignored);
      return;
    }
    if (writing_)
      return; // on_write closes
    close_sent_ = true;
    websocket::close_reason cr{static_cast<websocket::close_code>(code), reason};
    ws_.async_close(cr, [self = this->shared_from_this()](beast::error_code ec) {
      self->report(ec ? ec : beast::error_code{websocket::error::closed});
    });
  }

  void fail(const std::string& step, beast::error_code ec) {
    if (closing_)
      return report_code(pending_.first, pending_.second);
    report_code(close_code::abnormal, step + ": " + ec.message());
  }

  void report(beast::error_code ec) {
    if (ec == websocket::error::closed) {
      if (ws_.reason().code != websocket::close_code::none)
        return report_code(ws_.reason().code, ws_.reason().reason.c_str());
      return report_code(closing_ ? pending_.first : close_code::normal,
                         closing_ ? pending_.second : std::string{});
    }
    if (ec == websocket::error::message_too_big)
      return report_code(close_code::too_big, "frame too big");
    if (closing_)
      return report_code(pending_.first, pending_.second);
    report_code(close_code::abnormal, "connection lost: " + ec.message());
  }

  void report_code(uint16_t code, std::string reason) {
    if (reported_)
      return;
    reported_ = true;
    if (listener_)
      caf::anon_send(listener_, closed_atom::value, tag_, code, std::move(reason));
    listener_ = nullptr;
  }

  std::shared_ptr<void> keep_; // the TLS context, for TLS links
  // A copy: on shared socket threads a link may outlive its transport actor
  // (it finishes closing after being abandoned).
  const beast_transport_options opts_;
  tcp::resolver resolver_;
  websocket::stream<Stream> ws_;
  beast::flat_buffer buf_;
  websocket::response_type res_; // the upgrade's answer, until it is read
  uint32_t credit_ = flow::window;
  transport_listener_actor listener_;
  uint64_t tag_;
  detail::url_parts url_;
  header_list headers_;
  std::deque<shared_frame> queue_;
  bool open_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_sent_ = false;
  bool reported_ = false;
  std::pair<uint16_t, std::string> pending_{close_code::normal, {}};
};

struct transport_state {
  beast_transport_options opts;
  std::shared_ptr<client_io::runtime> io;
  std::shared_ptr<ssl::context> tls; // made at the first wss dial; links hold it too
  std::shared_ptr<client_link_base> link;
  static inline const char* name = "kullsync.beast_transport";

  ~transport_state() {
    // The link goes before the io thread that runs it.
    if (link)
      link->abandon();
    link.reset();
    io.reset();
  }
};

using transport_ptr = dialer_actor::stateful_pointer<transport_state>;

void dial(transport_ptr self, transport_listener_actor l, uint64_t tag,
          const std::string& url, header_list headers) {
  auto& st = self->state;
  if (st.link)
    st.link->abandon();
  st.link.reset();
  auto parts = detail::parse_ws_url(url);
  if (!parts) {
    // Said without its query, which may hold the token.
    self->send(l, closed_atom::value, tag, close_code::abnormal,
               "invalid URL '" + detail::redacted_url(url)
                 + "': expected ws:// or wss://HOST[:PORT 1-65535]");
    return;
  }
  auto ex = net::make_strand(st.io->ioc);
  // Loading the system's CA store takes milliseconds: only for wss, once.
  if (parts->tls && !st.tls)
    st.tls = make_tls(st.opts);
  if (parts->tls)
    st.link = std::make_shared<client_link<beast::ssl_stream<beast::tcp_stream>>>(
      ex, st.opts, std::move(l), tag, st.tls, *st.tls);
  else
    st.link = std::make_shared<client_link<beast::tcp_stream>>(ex, st.opts,
                                                               std::move(l), tag,
                                                               nullptr);
  st.link->start(std::move(*parts), std::move(headers));
}

dialer_actor::behavior_type beast_transport(transport_ptr self,
                                               beast_transport_options opts) {
  self->state.opts = opts;
  self->state.io = opts.io.rt ? opts.io.rt : make_client_io(1).rt;
  return {
    [=](connect_atom, transport_listener_actor l, uint64_t tag,
        const std::string& url, header_list& headers) {
      dial(self, std::move(l), tag, url, std::move(headers));
    },
    [=](credit_atom, uint64_t tag, uint32_t n) {
      if (self->state.link)
        self->state.link->credit(tag, n);
    },
    [=](send_atom, std::string& text) {
      if (self->state.link)
        self->state.link->send(make_shared_frame(std::move(text)));
    },
    [=](send_atom, const shared_frame& f) {
      if (self->state.link)
        self->state.link->send(f);
    },
    [=](close_atom, uint16_t code, std::string& reason) {
      if (self->state.link)
        self->state.link->close(code, std::move(reason));
    },
  };
}

} // namespace

dialer_actor spawn_beast_transport(caf::actor_system& sys,
                                   beast_transport_options opts) {
  return sys.spawn(beast_transport, std::move(opts));
}

} // namespace kullsync

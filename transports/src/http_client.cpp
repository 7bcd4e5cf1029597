#include "kullsync/transports/http_client.hpp"

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "client_io.hpp"
#include "kullsync/messages/ws_url.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace kullsync {


namespace {

/// http(s) URLs read with the ws(s) parser: http maps onto ws, https onto wss.
std::optional<detail::url_parts> parse_http_url(const std::string& url) {
  if (url.rfind("http://", 0) == 0)
    return detail::parse_ws_url("ws://" + url.substr(7));
  if (url.rfind("https://", 0) == 0)
    return detail::parse_ws_url("wss://" + url.substr(8));
  return std::nullopt;
}

http::request<http::string_body> make_request(const std::string& method,
                                              const detail::url_parts& u,
                                              const std::string& body,
                                              const header_list& headers = {}) {
  http::request<http::string_body> req{http::string_to_verb(method), u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::user_agent, "kullsync");
  for (auto& [name, value] : headers)
    req.set(name, value);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  return req;
}

/// One asynchronous exchange: resolve, connect, (TLS), write, read.
template <class Stream>
class fetch_op : public std::enable_shared_from_this<fetch_op<Stream>> {
public:
  using done_fn = std::function<void(http_result)>;

  template <class... Ts>
  fetch_op(net::any_io_executor ex, std::chrono::milliseconds timeout, done_fn done,
           std::shared_ptr<void> keep, Ts&&... stream_args)
    : keep_(std::move(keep)), resolver_(ex),
      stream_(ex, std::forward<Ts>(stream_args)...), timeout_(timeout),
      done_(std::move(done)) {
  }

  void start(detail::url_parts u, http::request<http::string_body> req, bool insecure) {
    url_ = std::move(u);
    req_ = std::move(req);
    insecure_ = insecure;
    beast::get_lowest_layer(stream_).expires_after(timeout_);
    resolver_.async_resolve(url_.host, url_.port,
                            beast::bind_front_handler(&fetch_op::on_resolve,
                                                      this->shared_from_this()));
  }

private:
  void on_resolve(beast::error_code ec, tcp::resolver::results_type results) {
    if (ec)
      return fail("resolve " + url_.host, ec);
    beast::get_lowest_layer(stream_).async_connect(
      results, beast::bind_front_handler(&fetch_op::on_connect, this->shared_from_this()));
  }

  void on_connect(beast::error_code ec, tcp::endpoint) {
    if (ec)
      return fail("connect " + url_.host + ":" + url_.port, ec);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      do_write();
    } else {
      SSL_set_tlsext_host_name(stream_.native_handle(), url_.host.c_str());
      if (!insecure_)
        stream_.set_verify_callback(ssl::host_name_verification(url_.host));
      stream_.async_handshake(ssl::stream_base::client,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec)
                                  return self->fail("TLS handshake", ec);
                                self->do_write();
                              });
    }
  }

  void do_write() {
    http::async_write(stream_, req_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec)
                          return self->fail("write", ec);
                        self->parser_.body_limit(8 * 1024 * 1024);
                        http::async_read(self->stream_, self->buf_, self->parser_,
                                         beast::bind_front_handler(&fetch_op::on_read,
                                                                   self));
                      });
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec)
      return fail("read", ec);
    http_result r;
    r.status = parser_.get().result_int();
    r.body = std::move(parser_.get().body());
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both,
                                                       ignored);
    done_(std::move(r));
  }

  void fail(const std::string& step, beast::error_code ec) {
    done_(http_result{0, {}, step + ": " + ec.message()});
  }

  std::shared_ptr<void> keep_; // the TLS context, for https
  tcp::resolver resolver_;
  Stream stream_;
  std::chrono::milliseconds timeout_;
  done_fn done_;
  detail::url_parts url_;
  http::request<http::string_body> req_;
  bool insecure_ = false;
  beast::flat_buffer buf_;
  http::response_parser<http::string_body> parser_;
};

using fetched_atom = caf::atom_constant<caf::atom("fetched")>;

/// The client's own protocol: the public one, plus the answers its io thread
/// hands back.
using http_client_impl = http_client_actor::extend<
  caf::reacts_to<fetched_atom, uint64_t, http_result>>;

struct http_client_state {
  beast_transport_options opts;
  std::shared_ptr<client_io::runtime> io;
  std::shared_ptr<ssl::context> tls; // made at the first https request
  std::map<uint64_t, caf::typed_response_promise<http_result>> pending;
  uint64_t next_id = 0;
  static inline const char* name = "kullsync.http_client";
};

using http_client_ptr = http_client_impl::stateful_pointer<http_client_state>;

caf::result<http_result> fetch(http_client_ptr self, const std::string& method,
                               const std::string& url, const std::string& body) {
  auto& st = self->state;
  auto u = parse_http_url(url);
  if (!u)
    return http_result{0, {}, "invalid URL '" + detail::redacted_url(url)
                                + "': expected http:// or https://HOST[:PORT 1-65535]"};
  auto id = st.next_id++;
  auto rp = self->make_response_promise<http_result>();
  st.pending.emplace(id, rp);
  // Answered by message: the io thread never touches the actor's state.
  auto done = [me = caf::actor_cast<http_client_impl>(self), id](http_result r) {
    caf::anon_send(me, fetched_atom::value, id, std::move(r));
  };
  auto ex = net::make_strand(st.io->ioc);
  auto req = make_request(method, *u, body);
  if (u->tls) {
    if (!st.tls) {
      st.tls = std::make_shared<ssl::context>(ssl::context::tls_client);
      st.tls->set_default_verify_paths();
      if (!st.opts.ca_file.empty())
        st.tls->load_verify_file(st.opts.ca_file);
      st.tls->set_verify_mode(st.opts.insecure ? ssl::verify_none : ssl::verify_peer);
    }
    std::make_shared<fetch_op<beast::ssl_stream<beast::tcp_stream>>>(
      ex, st.opts.connect_timeout, done, st.tls, *st.tls)
      ->start(std::move(*u), std::move(req), st.opts.insecure);
  } else {
    std::make_shared<fetch_op<beast::tcp_stream>>(ex, st.opts.connect_timeout, done,
                                                  nullptr)
      ->start(std::move(*u), std::move(req), false);
  }
  return rp;
}

http_client_impl::behavior_type http_client(http_client_ptr self,
                                            beast_transport_options opts) {
  self->state.io = opts.io.rt ? opts.io.rt : make_client_io(1).rt;
  self->state.opts = std::move(opts);
  self->state.opts.io = {};
  return {
    [=](fetch_atom, const std::string& method, const std::string& url,
        const std::string& body) { return fetch(self, method, url, body); },
    [=](fetched_atom, uint64_t id, http_result& r) {
      auto i = self->state.pending.find(id);
      if (i == self->state.pending.end())
        return;
      i->second.deliver(std::move(r));
      self->state.pending.erase(i);
    },
  };
}

} // namespace

http_client_actor spawn_http_client(caf::actor_system& sys,
                                    beast_transport_options opts) {
  return caf::actor_cast<http_client_actor>(sys.spawn(http_client, std::move(opts)));
}

std::string http_base_of(const std::string& ws_url) {
  auto u = detail::parse_ws_url(ws_url);
  if (!u)
    return {};
  return (u->tls ? "https://" : "http://") + u->host + ":" + u->port;
}

http_result http_fetch(const std::string& method, const std::string& url,
                       const std::string& body, std::chrono::milliseconds timeout,
                       bool insecure, const header_list& headers) {
  auto u = parse_http_url(url);
  if (!u)
    return {0, {}, "invalid URL '" + detail::redacted_url(url) + "'"};
  // The asynchronous exchange on an io_context of its own: Beast's deadline
  // bounds only asynchronous operations, and a server that accepts and
  // never answers must not hold the caller past `timeout`.
  try {
    std::optional<http_result> out; // outlives the io_context and what it holds
    net::io_context ioc;
    auto done = [&out](http_result r) { out = std::move(r); };
    auto req = make_request(method, *u, body, headers);
    if (u->tls) {
      auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
      ctx->set_default_verify_paths();
      ctx->set_verify_mode(insecure ? ssl::verify_none : ssl::verify_peer);
      auto& c = *ctx;
      std::make_shared<fetch_op<beast::ssl_stream<beast::tcp_stream>>>(
        ioc.get_executor(), timeout, done, std::move(ctx), c)
        ->start(std::move(*u), std::move(req), insecure);
    } else {
      std::make_shared<fetch_op<beast::tcp_stream>>(ioc.get_executor(), timeout, done, nullptr)
        ->start(std::move(*u), std::move(req), false);
    }
    // Connect, TLS, write and read share the stream's deadline; a name
    // lookup is the system resolver's (its own timeouts, /etc/resolv.conf),
    // which Asio runs on a thread that an io_context going away waits for.
    ioc.run_for(timeout + std::chrono::milliseconds{200});
    if (!out)
      return {0, {}, "no answer within " + std::to_string(timeout.count()) + " ms"};
    return std::move(*out);
  } catch (const boost::system::system_error& e) {
    return {0, {}, e.code().message()}; // not what(): it names Boost's source lines
  } catch (const std::exception& e) {
    return {0, {}, e.what()};
  }
}

} // namespace kullsync

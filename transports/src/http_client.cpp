#include "kullsync/transports/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "url.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

namespace kullsync {

namespace {

template <class Stream>
http_result exchange(Stream& stream, const std::string& method,
                     const detail::url_parts& u, const std::string& body,
                     std::chrono::milliseconds timeout) {
  http::request<http::string_body> req{http::string_to_verb(method), u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::user_agent, "kullsync");
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(timeout);
  http::write(stream, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(8 * 1024 * 1024);
  http::read(stream, buf, parser);
  http_result r;
  r.status = parser.get().result_int();
  r.body = std::move(parser.get().body());
  return r;
}

} // namespace

std::string http_base_of(const std::string& ws_url) {
  auto u = detail::parse_ws_url(ws_url);
  if (!u)
    return {};
  return (u->tls ? "https://" : "http://") + u->host + ":" + u->port;
}

http_result http_fetch(const std::string& method, const std::string& url,
                       const std::string& body, std::chrono::milliseconds timeout,
                       bool insecure) {
  // Reuse the ws:// parser: http(s) maps onto ws(s).
  std::string as_ws;
  if (url.rfind("http://", 0) == 0)
    as_ws = "ws://" + url.substr(7);
  else if (url.rfind("https://", 0) == 0)
    as_ws = "wss://" + url.substr(8);
  auto u = detail::parse_ws_url(as_ws);
  if (!u)
    return {0, {}, "invalid URL '" + url + "'"};
  try {
    net::io_context ioc;
    tcp::resolver resolver{ioc};
    auto results = resolver.resolve(u->host, u->port);
    if (!u->tls) {
      beast::tcp_stream stream{ioc};
      stream.expires_after(timeout);
      stream.connect(results);
      auto r = exchange(stream, method, *u, body, timeout);
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      return r;
    }
    ssl::context ctx{ssl::context::tls_client};
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(insecure ? ssl::verify_none : ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream{ioc, ctx};
    SSL_set_tlsext_host_name(stream.native_handle(), u->host.c_str());
    if (!insecure)
      stream.set_verify_callback(ssl::host_name_verification(u->host));
    beast::get_lowest_layer(stream).expires_after(timeout);
    beast::get_lowest_layer(stream).connect(results);
    stream.handshake(ssl::stream_base::client);
    return exchange(stream, method, *u, body, timeout);
  } catch (const std::exception& e) {
    return {0, {}, e.what()};
  }
}

} // namespace kullsync

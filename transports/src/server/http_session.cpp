#include "http_session.hpp"

#include <cctype>
#include <strings.h>
#include <optional>
#include <string_view>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "http_checks.hpp"
#include "ws_connection.hpp"

namespace kullsync::detail {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(std::shared_ptr<server_core> core, io_shard& shard, tcp::socket&& s,
               std::string peer)
    : core_(std::move(core)), shard_(shard), stream_(std::move(s)), peer_(std::move(peer)) {
  }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(core_->opts.max_http_body);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(core_->opts.handshake_timeout);
    http::async_read_header(stream_, buf_, *parser_,
                            beast::bind_front_handler(&http_session::on_header,
                                                      shared_from_this()));
  }

private:
  /// The header is in: refuse framing that a proxy could read otherwise
  /// (RFC 9112 6.3: request smuggling), then read the body.
  void on_header(beast::error_code ec, size_t n) {
    if (ec)
      return on_read(ec, n);
    auto& h = parser_->get();
    if (!framing_ok(h))
      return write({400, R"({"error":"Transfer-Encoding must be chunked alone, without Content-Length"})"},
                   h.version(), false);
    http::async_read(stream_, buf_, *parser_,
                     beast::bind_front_handler(&http_session::on_read,
                                               shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    if (ec == http::error::body_limit)
      return write({413, R"({"error":"Request body too large"})"}, 11, false);
    // A request the parser refuses (bad framing, both Content-Length and
    // Transfer-Encoding, bad chunks): 400, then the connection is closed.
    if (ec && ec.category() == beast::error_code{http::error::bad_version}.category()
        && ec != http::error::partial_message)
      return write({400, R"({"error":"Bad request: )" + ec.message() + R"("})"}, 11, false);
    if (ec)
      return; // timeout, reset or a request cut short: drop the connection
    auto req = parser_->release();
    if (beast::websocket::is_upgrade(req))
      return upgrade(std::move(req));
    ++core_->stats.http_requests;
    http_exchange ex;
    ex.request.method = std::string{req.method_string()};
    ex.request.target = std::string{req.target()};
    ex.request.body = std::move(req.body());
    for (auto& f : req)
      ex.request.headers.emplace_back(std::string{f.name_string()},
                                      std::string{f.value()});
    auto version = req.version();
    auto keep_alive = req.keep_alive();
    ex.responder = std::make_shared<std::function<void(http_response)>>(
      [self = shared_from_this(), version, keep_alive](http_response r) {
        self->core_->gate.post(self->shard_.ioc,
                               [self, r = std::move(r), version, keep_alive]() mutable {
                                 self->write(std::move(r), version, keep_alive);
                               });
      });
    stream_.expires_never(); // the actor answers; the responder keeps us alive
    tell(shard_.unit, core_->http, http_atom::value, std::move(ex));
  }

  void upgrade(http::request<http::string_body> req) {
    auto path = std::string{req.target()}.substr(0, req.target().find('?'));
    if (path != core_->opts.ws_path)
      return write({404, R"({"error":"Not found"})"}, req.version(), false);
    if (auto no = refuse_upgrade(req))
      return write({no->first, no->second}, req.version(), false);
    auto early = beast::buffers_to_string(buf_.data());
    std::make_shared<ws_connection>(core_, shard_, stream_.release_socket())
      ->start(std::move(req), std::move(early), std::move(peer_));
  }

  void write(http_response r, unsigned version, bool keep_alive) {
    res_.emplace(static_cast<http::status>(r.status), version);
    res_->set(http::field::server, "kullsync");
    res_->set(http::field::content_type, r.content_type);
    if (r.status == 426)
      res_->set(http::field::sec_websocket_version, "13");
    res_->keep_alive(keep_alive);
    res_->body() = std::move(r.body);
    res_->prepare_payload();
    stream_.expires_after(core_->opts.handshake_timeout);
    http::async_write(stream_, *res_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec,
                                                              size_t) {
                        if (ec || !keep_alive) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send,
                                                          ignored);
                          return;
                        }
                        self->do_read();
                      });
  }

  std::shared_ptr<server_core> core_;
  io_shard& shard_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::string peer_;
};

} // namespace

void start_http_session(std::shared_ptr<server_core> core, io_shard& shard,
                        tcp::socket&& socket, std::string peer) {
  std::make_shared<http_session>(std::move(core), shard, std::move(socket),
                                 std::move(peer))->do_read();
}

} // namespace kullsync::detail

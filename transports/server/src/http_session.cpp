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
  http_session(std::shared_ptr<server_core> core, io_shard& shard, io_socket&& s,
               peer_info peer, const std::string& early)
    : core_(std::move(core)), shard_(shard), stream_(std::move(s)), peer_(std::move(peer)) {
    if (!early.empty())
      buf_.commit(net::buffer_copy(buf_.prepare(early.size()), net::buffer(early)));
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
    auto client = client_of(req);
    if (!client)
      return write({400, R"({"error":"X-Forwarded-For from a trusted proxy must end with )"
                         R"(the client's IP address"})"},
                   req.version(), false);
    if (beast::websocket::is_upgrade(req))
      return upgrade(std::move(req), std::move(*client));
    ++core_->stats.http_requests;
    http_exchange ex;
    ex.request.method = std::string{req.method_string()};
    ex.request.target = std::string{req.target()};
    ex.request.body = std::move(req.body());
    ex.request.peer = std::move(*client);
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

  /// The request's client: the peer, or what a trusted proxy says of it;
  /// nothing when that proxy names no address.
  std::optional<std::string> client_of(const http::request<http::string_body>& req) {
    if (!peer_.trusted || peer_.proxied)
      return peer_.address;
    std::vector<std::string_view> xff;
    auto [from, to] = req.equal_range("X-Forwarded-For");
    for (auto i = from; i != to; ++i)
      xff.push_back(i->value());
    std::optional<std::string_view> real_ip;
    if (auto i = req.find("X-Real-IP"); i != req.end())
      real_ip = i->value();
    auto fw = forwarded_client(xff, real_ip);
    if (!fw.error.empty()) {
      core_->log->warn("{}: request refused (400): {}", peer_.address, fw.error);
      return std::nullopt;
    }
    return fw.address ? *fw.address : peer_.address;
  }

  void upgrade(http::request<http::string_body> req, std::string client) {
    auto path = std::string{req.target()}.substr(0, req.target().find('?'));
    if (path != core_->opts.ws_path)
      return write({404, R"({"error":"Not found"})"}, req.version(), false);
    if (auto no = refuse_upgrade(req))
      return write({no->first, no->second}, req.version(), false);
    auto early = beast::buffers_to_string(buf_.data());
    std::make_shared<ws_connection>(core_, shard_, stream_.release_socket())
      ->start(std::move(req), std::move(early), std::move(client));
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
  beast::basic_stream<tcp, io_socket::executor_type> stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  peer_info peer_;
};

} // namespace

void start_http_session(std::shared_ptr<server_core> core, io_shard& shard,
                        io_socket&& socket, peer_info peer, std::string early) {
  std::make_shared<http_session>(std::move(core), shard, std::move(socket),
                                 std::move(peer), early)
    ->do_read();
}

} // namespace kullsync::detail

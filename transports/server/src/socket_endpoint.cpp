#include "socket_endpoint.hpp"


#include "caf_bridge.hpp"
#include "ws_connection.hpp"

namespace kullsync::detail {

namespace {

/// The accepted link's protocol, served by its connection.
struct socket_endpoint {
  std::shared_ptr<ws_connection> conn;

  void operator()(send_atom, const shared_frame& f) { conn->post_send(f); }
  void operator()(send_atom, const std::string& text) {
    conn->post_send(make_shared_frame(text));
  }
  void operator()(credit_atom, uint64_t tag, uint32_t n) { conn->post_credit(tag, n); }
  void operator()(close_atom, uint16_t code, const std::string& reason) {
    conn->post_close(code, reason);
  }
  void operator()(attach_atom, const transport_listener_actor& l, uint64_t tag,
                  const std::string& protocol) {
    conn->post_attach(l, tag, protocol);
  }
};

} // namespace

accepted_link_actor make_socket_endpoint(caf::actor_system& sys,
                                         std::shared_ptr<ws_connection> c) {
  return make_inline_actor<accepted_link_actor>(sys, socket_endpoint{std::move(c)},
                                                "kullsync.socket");
}

} // namespace kullsync::detail

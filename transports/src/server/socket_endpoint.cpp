#include "socket_endpoint.hpp"

#include <caf/type_erased_tuple.hpp>
#include <caf/send.hpp>

#include "caf_bridge.hpp"
#include "ws_connection.hpp"

namespace kullsync::detail {

namespace {

struct socket_endpoint {
  std::shared_ptr<ws_connection> conn;

  void on_message(const caf::type_erased_tuple& m) {
    if (m.match_elements<send_atom, shared_frame>()) {
      conn->post_send(m.get_as<shared_frame>(1));
    } else if (m.match_elements<send_atom, std::string>()) {
      conn->post_send(make_shared_frame(m.get_as<std::string>(1)));
    } else if (m.match_elements<credit_atom, uint64_t, uint32_t>()) {
      conn->post_credit(m.get_as<uint64_t>(1), m.get_as<uint32_t>(2));
    } else if (m.match_elements<close_atom, uint16_t, std::string>()) {
      conn->post_close(m.get_as<uint16_t>(1), m.get_as<std::string>(2));
    } else if (m.match_elements<attach_atom, transport_listener_actor, uint64_t,
                                std::string>()) {
      conn->post_attach(m.get_as<transport_listener_actor>(1), m.get_as<uint64_t>(2),
                        m.get_as<std::string>(3));
    } else if (m.match_elements<connect_atom, transport_listener_actor, uint64_t,
                                std::string, header_list>()) {
      caf::anon_send(m.get_as<transport_listener_actor>(1), closed_atom::value,
                     m.get_as<uint64_t>(2), close_code::internal_error,
                     std::string{"an accepted socket cannot dial"});
    }
    // Anything else (exit or down messages of links) has no meaning here.
  }
};

} // namespace

transport_actor make_socket_endpoint(caf::actor_system& sys,
                                     std::shared_ptr<ws_connection> c) {
  return make_inline_actor<transport_actor>(sys, socket_endpoint{std::move(c)},
                                            "kullsync.socket");
}

} // namespace kullsync::detail

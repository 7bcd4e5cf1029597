#pragma once

/// The transport interface: typed actor protocols for the roles of a
/// WebSocket link (a link, a dialer, an accepted link), implemented over real
/// sockets (beast_transport, the Beast server) and in memory
/// (memory_transport, the memory network). A transport knows bytes and
/// frames, nothing of JSON.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/transports/close_code.hpp"
#include "kullsync/transports/headers.hpp"
#include "kullsync/transports/frame.hpp"

namespace kullsync {

// -- atoms shared by transports and their owners -------------------------------

using connect_atom = caf::atom_constant<caf::atom("connect")>;
using attach_atom = caf::atom_constant<caf::atom("attach")>;
using send_atom = caf::atom_constant<caf::atom("send")>;
using close_atom = caf::atom_constant<caf::atom("close")>;
using opened_atom = caf::atom_constant<caf::atom("opened")>;
using frame_atom = caf::atom_constant<caf::atom("frame")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using accept_atom = caf::atom_constant<caf::atom("accept")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;


template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, shared_frame& x) {
  std::string tmp;
  if constexpr (Inspector::reads_state)
    tmp = x.text ? *x.text : std::string{};
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.text = std::make_shared<const std::string>(std::move(tmp));
    return caf::none;
  });
  return f(caf::meta::type_name("shared_frame"), tmp, load);
}

/// Frames that arrived on one link together, oldest first: what one read
/// produced (a real socket's read pass, a burst in the memory network), so
/// a burst costs its listener a mailbox round per batch, not per frame.
/// CAF knows this type already ("@strvec").
using frame_batch = std::vector<std::string>;


/// Flow control between a transport and its listener. A transport hands its
/// listener at most `window` frames of a link that the listener has not
/// given back as credit; past that it stops reading the link (a real
/// socket's peer then meets TCP's back-pressure). The listener gives credit
/// back with credit(tag, n) once it has handled frames; `credit_return`
/// gathers that into one message per half window.
namespace flow {
constexpr uint32_t window = 256;

/// The listener's side: counts handled frames and says when to give them
/// back as credit.
class credit_return {
public:
  /// Counts `n` handled frames; the credit to send now, or 0 to wait.
  uint32_t handled(size_t n) {
    handled_ += static_cast<uint32_t>(n);
    if (handled_ < window / 2)
      return 0;
    return std::exchange(handled_, 0);
  }
  /// A new link starts with a whole window.
  void reset() { handled_ = 0; }

private:
  uint32_t handled_ = 0;
};
} // namespace flow

/// What a transport reports to the owner of its current link. The first
/// argument is the owner's tag for that link, echoed so that late events of an
/// old link are told apart from the current one. `opened` names the
/// subprotocol the handshake agreed on ("" for none).
using transport_listener_actor = caf::typed_actor<
  caf::reacts_to<opened_atom, uint64_t, std::string>,
  caf::reacts_to<frame_atom, uint64_t, frame_batch>,
  caf::reacts_to<closed_atom, uint64_t, uint16_t, std::string>>;

/// The roles of a WebSocket transport, each a protocol of its own that every
/// implementation serves completely:
/// - `link_actor`: one end of an open (or opening) link, as both sides use it;
/// - `dialer_actor`: a client's transport, which opens links (`connect`);
/// - `accepted_link_actor`: a link a server accepted, which it completes
///   (`attach`).
/// A dialer and an accepted link are both links, so the code that only sends
/// (a session, the hub) holds a `link_actor` whichever side it is on.
///
/// The link role:
/// - `send(text)` or `send(shared_frame)`: one text frame; dropped when no
///   link is open.
/// - `credit(tag, n)`: the listener handled `n` more frames (see `flow`).
/// - `close(code, reason)`: closes the link; `closed` follows.
using link_actor = caf::typed_actor<
  caf::reacts_to<send_atom, std::string>,
  caf::reacts_to<send_atom, shared_frame>,
  caf::reacts_to<credit_atom, uint64_t, uint32_t>,
  caf::reacts_to<close_atom, uint16_t, std::string>>;

/// A client's transport: `connect(listener, tag, url, headers)` dials `url`,
/// reports `opened` only once the handshake completed, else `closed` with a
/// reason. A `Sec-WebSocket-Protocol` header offers subprotocols; `opened`
/// names the one the server echoed. A new connect replaces the current link.
using dialer_actor = link_actor::extend<
  caf::reacts_to<connect_atom, transport_listener_actor, uint64_t, std::string,
                 header_list>>;

/// The server's end of a link whose handshake request was read.
/// `attach(listener, tag, subprotocol)` completes the handshake (echoing
/// `subprotocol` unless empty; the client sees its link open only now), then
/// reports `opened` and the frames received. Frames sent before it are held
/// and go out first, so whatever the server registered before attaching
/// reaches a client that already sees the link open.
using accepted_link_actor = link_actor::extend<
  caf::reacts_to<attach_atom, transport_listener_actor, uint64_t, std::string>>;

/// A server's entry point: receives each link with the request target (path
/// and query) and headers of its handshake, and the peer's address (an IP
/// address; "memory" in the memory network), before the handshake completes.
using acceptor_actor = caf::typed_actor<
  caf::reacts_to<accept_atom, accepted_link_actor, std::string, header_list,
                 std::string>>;

} // namespace kullsync

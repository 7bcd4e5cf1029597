#pragma once

/// HTTP requests as actor messages: the socket side hands each request to an
/// actor with a responder that writes the answer back on the socket.

#include <functional>
#include <memory>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/transports/transport.hpp"

namespace kullsync {

using http_atom = caf::atom_constant<caf::atom("http")>;

struct http_request {
  std::string method; // "GET", "POST", ...
  std::string target; // path and query
  std::string body;
  header_list headers;
  std::string peer; // the client's address (what a trusted proxy says of it)
  std::string path() const { return target.substr(0, target.find('?')); }
};

struct http_response {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
};

/// One request and the way back. `respond` may be called from any thread,
/// once; it posts the write onto the socket's io thread.
struct http_exchange {
  http_request request;
  std::shared_ptr<std::function<void(http_response)>> responder;
  void respond(http_response r) const {
    if (responder)
      (*responder)(std::move(r));
  }
};

using http_handler_actor
  = caf::typed_actor<caf::reacts_to<http_atom, http_exchange>>;

} // namespace kullsync

// A responder is a local callback: the exchange never leaves the process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(kullsync::http_exchange)

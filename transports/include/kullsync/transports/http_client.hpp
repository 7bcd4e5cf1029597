#pragma once

/// HTTP/1.1 requests (http:// and https://): as an actor for actors (it never
/// blocks anyone), and a blocking call for threads that are not actors (the
/// console demo's simulated backend).

#include <chrono>
#include <string>

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "kullsync/transports/beast_transport.hpp"

namespace kullsync {

struct http_result {
  unsigned status = 0; // 0: no answer, see `error`
  std::string body;
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_result& x) {
  return f(caf::meta::type_name("http_result"), x.status, x.body, x.error);
}

using fetch_atom = caf::atom_constant<caf::atom("fetch")>;

/// `fetch(method, url, body)` answers with the response, or with status 0
/// and the reason when there is none (refused, timeout, TLS, bad URL).
using http_client_actor = caf::typed_actor<
  caf::replies_to<fetch_atom, std::string, std::string, std::string>::with<http_result>>;

/// Runs its requests on `opts.io` (or an io thread of its own); TLS as the
/// WebSocket transport does it (`insecure`, `ca_file`). Each request gets
/// `opts.connect_timeout` for the whole exchange.
http_client_actor spawn_http_client(caf::actor_system& sys,
                                    beast_transport_options opts = {});

/// A blocking request (for a thread that is not an actor): `headers` are
/// sent besides Host, User-Agent and, with a body, Content-Type JSON.
http_result http_fetch(const std::string& method, const std::string& url,
                       const std::string& body = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds{5},
                       bool insecure = false, const header_list& headers = {});

/// http(s)://host[:port] of a ws(s):// endpoint URL; empty if not one.
std::string http_base_of(const std::string& ws_url);

} // namespace kullsync

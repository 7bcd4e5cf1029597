#pragma once

// Private to the client engine: what a dial sends (the URL with its query,
// the handshake's headers) and the ids it makes. No CAF.

#include <cstdint>
#include <string>

#include "kullsync/client/config.hpp"
#include "kullsync/transports/transport.hpp"

namespace kullsync {

/// Percent-encodes a query value; ':' stays, as the deployed apps send it.
std::string query_escape(const std::string& in);

/// The prefix of a device's client message ids, unique across its runs.
std::string make_message_id_prefix(const std::string& device, int64_t now_ms);

struct dial_request {
  std::string target;
  header_list headers;
};

/// The request for `url` with `token` (in the query, or as a Bearer header),
/// offering kull.v2 with `resume_query` when the config offers v2.
dial_request make_dial_request(const connection_config& cc, const std::string& url,
                               const std::string& token, const std::string& resume_query);

} // namespace kullsync

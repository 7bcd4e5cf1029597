#pragma once

// Splits ws:// and wss:// URLs: the transports dial with it, and the client
// engine refuses a URL it cannot dial before it tries (not a network fault
// to retry).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kullsync::detail {

struct url_parts {
  bool tls = false;
  std::string host;
  std::string port;   // defaulted from the scheme
  std::string target; // path and query, at least "/"
  std::string path;   // target without the query
};

std::optional<url_parts> parse_ws_url(std::string_view url);

/// `url` as an error may quote it: without its query (where a token may
/// be) and without user info before the host (`user:password@`).
std::string redacted_url(std::string_view url);


} // namespace kullsync::detail

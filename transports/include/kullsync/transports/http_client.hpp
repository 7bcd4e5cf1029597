#pragma once

/// A small blocking HTTP/1.1 client (http:// and https://) for threads that
/// are not actors: the console's state loader and the demo's backend.

#include <chrono>
#include <string>

namespace kullsync {

struct http_result {
  unsigned status = 0; // 0: no answer, see `error`
  std::string body;
  std::string error;
};

http_result http_fetch(const std::string& method, const std::string& url,
                       const std::string& body = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds{5},
                       bool insecure = false);

/// http(s)://host[:port] of a ws(s):// endpoint URL; empty if not one.
std::string http_base_of(const std::string& ws_url);

} // namespace kullsync

#pragma once

/// Subprotocol negotiation (RFC 6455 4.1): whether a Sec-WebSocket-Protocol
/// value offers a subprotocol. No dependencies.

#include <string_view>

namespace kullsync {

/// The subprotocol of v2 sockets (PROTOCOL.md, "v2").
constexpr const char* v2_subprotocol = "kull.v2";

/// True if the comma-separated `offered` lists `protocol` (names compare
/// exactly); false for an empty `protocol`.
inline bool offers_subprotocol(std::string_view offered, std::string_view protocol) {
  if (protocol.empty())
    return false;
  while (!offered.empty()) {
    auto comma = offered.find(',');
    auto item = offered.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (item == protocol)
      return true;
    if (comma == std::string_view::npos)
      break;
    offered.remove_prefix(comma + 1);
  }
  return false;
}

} // namespace kullsync

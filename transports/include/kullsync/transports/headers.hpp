#pragma once

/// HTTP header fields as the transports hand them over, and the one way
/// they are looked up (names are case-insensitive, RFC 9110 5.1).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kullsync {

/// HTTP headers of a request (a WebSocket handshake's too), in order.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// ASCII case-insensitive equality.
bool iequals(std::string_view x, std::string_view y);

/// The first value of header `name`, if present.
std::optional<std::string_view> header_value(const header_list& headers,
                                             std::string_view name);

/// The credentials of an `Authorization: Bearer <credentials>` value;
/// nothing for another scheme or none.
std::optional<std::string_view> bearer_credentials(std::string_view authorization);

} // namespace kullsync

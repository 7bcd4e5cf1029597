#include "kullsync/messages/ws_url.hpp"

#include <cctype>
#include <string>

namespace kullsync::detail {

std::optional<url_parts> parse_ws_url(std::string_view url) {
  url_parts x;
  if (url.rfind("ws://", 0) == 0) {
    url.remove_prefix(5);
  } else if (url.rfind("wss://", 0) == 0) {
    x.tls = true;
    url.remove_prefix(6);
  } else {
    return std::nullopt;
  }
  auto slash = url.find_first_of("/?");
  auto authority = url.substr(0, slash);
  x.target = slash == std::string_view::npos ? "/" : std::string{url.substr(slash)};
  if (!x.target.empty() && x.target[0] == '?')
    x.target.insert(0, "/");
  if (authority.empty())
    return std::nullopt;
  if (authority.front() == '[') { // [v6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    x.host = std::string{authority.substr(1, close - 1)};
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return std::nullopt;
      x.port = std::string{rest.substr(1)};
    }
  } else {
    auto colon = authority.rfind(':');
    x.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos)
      x.port = std::string{authority.substr(colon + 1)};
  }
  if (x.host.empty())
    return std::nullopt;
  if (x.port.empty())
    x.port = x.tls ? "443" : "80";
  for (char c : x.port)
    if (c < '0' || c > '9')
      return std::nullopt;
  // A port past 65535 would wrap around to another endpoint.
  if (x.port.size() > 5 || std::stoul(x.port) == 0 || std::stoul(x.port) > 65535)
    return std::nullopt;
  x.path = x.target.substr(0, x.target.find('?'));
  return x;
}


std::string redacted_url(std::string_view url) {
  url = url.substr(0, url.find('?'));
  auto scheme = url.find("://");
  auto from = scheme == std::string_view::npos ? 0 : scheme + 3;
  auto at = url.find('@', from);
  auto slash = url.find('/', from);
  if (at != std::string_view::npos && (slash == std::string_view::npos || at < slash))
    return std::string{url.substr(0, from)} + "***@" + std::string{url.substr(at + 1)};
  return std::string{url};
}

} // namespace kullsync::detail

// The --broker URLs: redis:// (one instance) and redis+sentinel:// (the
// master the sentinels name), and lists of them.
#include <netdb.h>
#include <sys/socket.h>

#include <cstdlib>
#include <string_view>

#include "kullsync/broker/redis_broker.hpp"

namespace kullsync::broker {

namespace {

constexpr std::string_view plain_scheme = "redis://";
constexpr std::string_view sentinel_scheme = "redis+sentinel://";

/// "host[:port]" or "[v6][:port]" (`default_port` without one), the host
/// resolved now (hiredis' own lookup would block the io thread). `shown`
/// names the URL in errors.
std::optional<std::pair<std::string, uint16_t>>
host_port(const std::string& text, const std::string& shown, std::string& error,
          const char* default_port = "6379") {
  std::string host = text, port = default_port;
  if (!text.empty() && text.front() == '[') { // [IPv6]:port
    auto end = text.find(']');
    if (end == std::string::npos) {
      error = shown + ": unclosed [";
      return std::nullopt;
    }
    host = text.substr(1, end - 1);
    if (end + 1 < text.size() && text[end + 1] == ':')
      port = text.substr(end + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  auto p = std::strtol(port.c_str(), &end, 10);
  if (host.empty() || port.empty() || *end != '\0' || p < 1 || p > 65535) {
    error = shown + ": needs a host and a port 1-65535";
    return std::nullopt;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0 || !found) {
    error = shown + ": cannot resolve " + host + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  char ip[NI_MAXHOST];
  auto rc = getnameinfo(found->ai_addr, found->ai_addrlen, ip, sizeof(ip), nullptr, 0,
                        NI_NUMERICHOST);
  freeaddrinfo(found);
  if (rc != 0) {
    error = shown + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  return std::make_pair(std::string{ip}, static_cast<uint16_t>(p));
}

/// Splits "[[user]:password@]rest" off; false on malformed credentials.
bool credentials(std::string& rest, redis_endpoint& e, std::string_view scheme,
                 std::string& error) {
  auto at = rest.rfind('@');
  if (at == std::string::npos)
    return true;
  auto info = rest.substr(0, at);
  rest = rest.substr(at + 1);
  auto colon = info.find(':');
  if (colon == std::string::npos || colon + 1 == info.size()) {
    error = "a " + std::string{scheme} + " URL's credentials are [user]:password";
    return false;
  }
  e.user = info.substr(0, colon);
  e.password = info.substr(colon + 1);
  return true;
}

std::optional<redis_endpoint> parse_sentinel_url(const std::string& url, std::string& error) {
  redis_endpoint e;
  auto rest = url.substr(sentinel_scheme.size());
  if (!credentials(rest, e, sentinel_scheme, error))
    return std::nullopt;
  auto shown = "'" + std::string{sentinel_scheme} + rest + "'"; // never the password
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash + 1 == rest.size()) {
    error = shown + ": names no master (redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER_NAME)";
    return std::nullopt;
  }
  e.master_name = rest.substr(slash + 1);
  for (unsigned char c : e.master_name)
    if (c <= ' ' || c == 0x7f || c == '/') {
      error = shown + ": the master's name has a space, a control character or a '/'";
      return std::nullopt;
    }
  auto hosts = rest.substr(0, slash);
  size_t at = 0;
  while (at <= hosts.size()) {
    auto comma = hosts.find(',', at);
    if (comma == std::string::npos)
      comma = hosts.size();
    auto one = hosts.substr(at, comma - at);
    at = comma + 1;
    auto hp = host_port(one, shown, error, "26379"); // Sentinel's own port
    if (!hp)
      return std::nullopt;
    e.sentinels.push_back(std::move(*hp));
  }
  // The master's address comes from the sentinels, at run time.
  e.host.clear();
  e.port = 0;
  return e;
}

} // namespace

std::optional<redis_endpoint> parse_redis_url(const std::string& url, std::string& error) {
  if (url.compare(0, sentinel_scheme.size(), sentinel_scheme) == 0)
    return parse_sentinel_url(url, error);
  if (url.compare(0, plain_scheme.size(), plain_scheme) != 0) {
    auto scheme_end = url.find("://");
    auto shown = url.find('@') == std::string::npos || scheme_end == std::string::npos
                   ? url
                   : url.substr(0, scheme_end) + "://..."; // never a password
    error = "'" + shown
            + "' is not redis://HOST[:PORT] or redis+sentinel://HOST:PORT[,...]/MASTER_NAME";
    return std::nullopt;
  }
  redis_endpoint e;
  auto rest = url.substr(plain_scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos)
    rest.resize(slash);
  if (!credentials(rest, e, plain_scheme, error))
    return std::nullopt;
  auto hp = host_port(rest, "'redis://" + rest + "'", error);
  if (!hp)
    return std::nullopt;
  e.host = hp->first;
  e.port = hp->second;
  return e;
}

std::vector<std::string> split_broker_list(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size()) {
      if (list[i] != ',')
        continue;
      auto next = std::string_view{list}.substr(i + 1);
      while (!next.empty() && next.front() == ' ')
        next.remove_prefix(1);
      // A comma inside a sentinel URL separates its sentinels.
      if (next.rfind(plain_scheme, 0) != 0 && next.rfind(sentinel_scheme, 0) != 0)
        continue;
    }
    auto one = list.substr(start, i - start);
    while (!one.empty() && one.front() == ' ')
      one.erase(0, 1);
    while (!one.empty() && one.back() == ' ')
      one.pop_back();
    if (!one.empty())
      out.push_back(std::move(one));
    start = i + 1;
  }
  return out;
}

} // namespace kullsync::broker

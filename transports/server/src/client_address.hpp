#pragma once

// Private to the server side of kullsync_transports: who the client is when
// a balancer stands between it and the server. Pure logic, no I/O (the
// PROXY header is read by proxy_preface.cpp, the headers by http_session).
//
// Only a trusted proxy (--trusted-proxies) may name the client: by a PROXY
// protocol header (v1 text or v2 binary, before anything else on the
// connection; --proxy-protocol on), else by the last X-Forwarded-For entry
// (or X-Real-IP), which is the one the proxy itself appended. From anyone
// else those headers are ignored, so a forged X-Forwarded-For never spreads
// one client over many addresses.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kullsync::detail {

/// A set of networks, e.g. "10.0.0.0/8,192.168.1.7,::1/128". IPv4 addresses
/// seen as IPv6 (::ffff:a.b.c.d, a dual-stack listener) match their IPv4
/// networks.
class address_set {
public:
  /// Throws std::invalid_argument naming the entry that is not an address or
  /// network.
  static address_set parse(std::string_view list);

  bool contains(std::string_view address) const;
  bool empty() const { return nets_.empty(); }

private:
  struct network {
    std::array<uint8_t, 16> bytes{};
    unsigned prefix = 0; // bits, of 32 (IPv4) or 128 (IPv6)
    bool v4 = false;
  };
  std::vector<network> nets_;
};

/// An IP address in its usual text (IPv4, or IPv6 without brackets), or
/// nothing; IPv4 seen as IPv6 comes out as IPv4.
std::optional<std::string> normal_address(std::string_view text);

/// What the first bytes of a connection say about a PROXY protocol header.
struct proxy_header {
  enum class outcome {
    need_more, // could still be one: read more
    absent,    // the connection does not begin with one
    found,     // `length` bytes of header; `source` the client's address
    invalid,   // begins like one but is not one (`error` says why)
  };
  outcome result = outcome::need_more;
  size_t length = 0;
  /// Empty for a header that names no client (v1 UNKNOWN, v2 LOCAL as in a
  /// balancer's own health check, or a family other than TCP/UDP over IP):
  /// the connection's own peer is the client then.
  std::string source;
  std::string error;
};

/// Longest header accepted (v2 with its TLVs); a longer one is invalid.
constexpr size_t max_proxy_header = 4096;

/// Reads a PROXY header, v1 or v2, from the start of `bytes`.
proxy_header parse_proxy_header(std::string_view bytes);

/// The client's address from a trusted proxy's headers: the last entry of
/// the (comma-joined) X-Forwarded-For values, else X-Real-IP. Nothing when
/// it sent neither; an error text when the entry is not an IP address.
struct forwarded {
  std::optional<std::string> address;
  std::string error;
};
forwarded forwarded_client(const std::vector<std::string_view>& x_forwarded_for,
                           std::optional<std::string_view> x_real_ip);

} // namespace kullsync::detail

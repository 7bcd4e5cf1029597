#include "client_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kullsync::detail {

namespace {

/// An address's 16 bytes (IPv4 in the first 4) and whether it is IPv4;
/// IPv4-mapped IPv6 is IPv4.
struct raw_address {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;
};

std::optional<raw_address> raw(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN)
    return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  raw_address a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.v4 = true;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1)
    return std::nullopt;
  static constexpr uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a.bytes.data(), mapped, sizeof(mapped)) == 0) {
    std::memmove(a.bytes.data(), a.bytes.data() + 12, 4);
    std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
    a.v4 = true;
  }
  return a;
}

std::string text_of(const raw_address& a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.v4 ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// -- PROXY protocol v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" -------

constexpr std::string_view v1_sig = "PROXY ";
constexpr size_t v1_max = 107; // the specification's longest line, CRLF included

bool valid_port(std::string_view p) {
  if (p.empty() || p.size() > 5 || (p.size() > 1 && p[0] == '0'))
    return false;
  unsigned n = 0;
  for (char c : p) {
    if (c < '0' || c > '9')
      return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n <= 65535;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at <= s.size()) {
    auto sp = s.find(' ', at);
    if (sp == std::string_view::npos)
      sp = s.size();
    out.push_back(s.substr(at, sp - at));
    at = sp + 1;
  }
  return out;
}

proxy_header invalid(std::string why) {
  proxy_header h;
  h.result = proxy_header::outcome::invalid;
  h.error = std::move(why);
  return h;
}

proxy_header parse_v1(std::string_view bytes) {
  auto end = bytes.substr(0, v1_max).find("\r\n");
  if (end == std::string_view::npos)
    return bytes.size() < v1_max ? proxy_header{}
                                 : invalid("PROXY v1 line longer than 107 bytes");
  auto line = bytes.substr(v1_sig.size(), end - v1_sig.size());
  proxy_header h;
  h.result = proxy_header::outcome::found;
  h.length = end + 2;
  if (line.rfind("UNKNOWN", 0) == 0)
    return h; // the proxy does not know: the connection's peer stands
  auto f = split_spaces(line);
  if (f.size() != 5 || (f[0] != "TCP4" && f[0] != "TCP6"))
    return invalid("PROXY v1: not 'TCP4|TCP6 <source> <destination> <ports>'");
  auto src = raw(f[1]), dst = raw(f[2]);
  bool v4 = f[0] == "TCP4";
  // The family must match the text: "::ffff:1.2.3.4" is not TCP4's.
  bool src_ok = src && (v4 ? f[1].find(':') == std::string_view::npos
                           : f[1].find(':') != std::string_view::npos);
  bool dst_ok = dst && (v4 ? f[2].find(':') == std::string_view::npos
                           : f[2].find(':') != std::string_view::npos);
  if (!src_ok || !dst_ok || !valid_port(f[3]) || !valid_port(f[4]))
    return invalid("PROXY v1: bad address or port");
  h.source = text_of(*src);
  return h;
}

// -- PROXY protocol v2: a 16-byte binary preamble, then addresses, TLVs ----

constexpr std::string_view v2_sig{"\r\n\r\n\0\r\nQUIT\n", 12};

proxy_header parse_v2(std::string_view bytes) {
  if (bytes.size() < 16)
    return {};
  auto b = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  if ((b(12) >> 4) != 2)
    return invalid("PROXY v2: version is not 2");
  auto command = b(12) & 0x0f;
  if (command > 1)
    return invalid("PROXY v2: unknown command");
  size_t len = (size_t{b(14)} << 8) | b(15);
  if (16 + len > max_proxy_header)
    return invalid("PROXY v2: header longer than 4096 bytes");
  if (bytes.size() < 16 + len)
    return {};
  proxy_header h;
  h.result = proxy_header::outcome::found;
  h.length = 16 + len;
  auto family = b(13) >> 4, transport = b(13) & 0x0f;
  if (command == 0 || transport == 0 || transport > 2)
    return h; // LOCAL (the proxy's own check), or not TCP/UDP: no client named
  raw_address a;
  if (family == 1) { // IPv4: src(4) dst(4) sport dport
    if (len < 12)
      return invalid("PROXY v2: IPv4 addresses cut short");
    std::memcpy(a.bytes.data(), bytes.data() + 16, 4);
    a.v4 = true;
  } else if (family == 2) { // IPv6: src(16) dst(16) sport dport
    if (len < 36)
      return invalid("PROXY v2: IPv6 addresses cut short");
    std::memcpy(a.bytes.data(), bytes.data() + 16, 16);
    if (auto n = raw(text_of(a)))
      a = *n; // IPv4-mapped: IPv4
  } else {
    return h; // AF_UNSPEC or AF_UNIX: no IP address to take
  }
  h.source = text_of(a);
  return h;
}

/// Whether `bytes` (shorter than `sig`) could still grow into it.
bool could_be(std::string_view bytes, std::string_view sig) {
  auto n = std::min(bytes.size(), sig.size());
  return bytes.substr(0, n) == sig.substr(0, n);
}

} // namespace

address_set address_set::parse(std::string_view list) {
  address_set out;
  size_t at = 0;
  while (at <= list.size()) {
    auto comma = list.find(',', at);
    if (comma == std::string_view::npos)
      comma = list.size();
    auto entry = trim(list.substr(at, comma - at));
    at = comma + 1;
    if (entry.empty())
      continue;
    auto slash = entry.find('/');
    auto a = raw(entry.substr(0, slash));
    auto bad = [&] {
      return std::invalid_argument("'" + std::string{entry}
                                   + "' is not an IP address or network (CIDR)");
    };
    if (!a)
      throw bad();
    network n;
    n.bytes = a->bytes;
    n.v4 = a->v4;
    // "::ffff:10.0.0.0/104" is IPv4's 10.0.0.0/8.
    bool mapped_text = n.v4 && entry.substr(0, slash).find(':') != std::string_view::npos;
    unsigned max = n.v4 ? 32 : 128;
    n.prefix = max;
    if (slash != std::string_view::npos) {
      auto p = entry.substr(slash + 1);
      if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string_view::npos)
        throw bad();
      unsigned bits = static_cast<unsigned>(std::stoul(std::string{p}));
      if (mapped_text) {
        if (bits < 96 || bits > 128)
          throw bad();
        bits -= 96;
      }
      if (bits > max)
        throw bad();
      n.prefix = bits;
    }
    out.nets_.push_back(n);
  }
  return out;
}

bool address_set::contains(std::string_view address) const {
  auto a = raw(address);
  if (!a)
    return false;
  for (auto& n : nets_) {
    if (n.v4 != a->v4)
      continue;
    auto full = n.prefix / 8, rest = n.prefix % 8;
    if (std::memcmp(n.bytes.data(), a->bytes.data(), full) != 0)
      continue;
    if (rest != 0) {
      auto mask = static_cast<uint8_t>(0xff << (8 - rest));
      if ((n.bytes[full] & mask) != (a->bytes[full] & mask))
        continue;
    }
    return true;
  }
  return false;
}

std::optional<std::string> normal_address(std::string_view text) {
  auto a = raw(text);
  if (!a)
    return std::nullopt;
  return text_of(*a);
}

proxy_header parse_proxy_header(std::string_view bytes) {
  if (bytes.empty())
    return {};
  proxy_header absent;
  absent.result = proxy_header::outcome::absent;
  if (bytes.size() < v1_sig.size() && could_be(bytes, v1_sig))
    return {};
  if (bytes.rfind(v1_sig, 0) == 0)
    return parse_v1(bytes);
  if (bytes.size() < v2_sig.size() && could_be(bytes, v2_sig))
    return {};
  if (bytes.rfind(v2_sig, 0) == 0)
    return parse_v2(bytes);
  return absent;
}

forwarded forwarded_client(const std::vector<std::string_view>& x_forwarded_for,
                           std::optional<std::string_view> x_real_ip) {
  forwarded out;
  std::string_view last;
  bool any = false;
  for (auto v : x_forwarded_for) {
    auto comma = v.rfind(',');
    auto entry = trim(comma == std::string_view::npos ? v : v.substr(comma + 1));
    // A field of only commas or spaces adds nothing to the list.
    if (!entry.empty() || !trim(v).empty()) {
      last = entry;
      any = true;
    }
  }
  if (!any && x_real_ip) {
    last = trim(*x_real_ip);
    any = true;
  }
  if (!any)
    return out;
  if (auto a = normal_address(last))
    out.address = std::move(*a);
  else
    out.error = "the trusted proxy's X-Forwarded-For (or X-Real-IP) does not end with an "
                "IP address: '" + std::string{last.substr(0, 64)} + "'";
  return out;
}

} // namespace kullsync::detail

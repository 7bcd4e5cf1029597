// Who the client is behind a balancer (client_address.hpp): trusted
// networks, PROXY protocol headers v1 and v2, X-Forwarded-For.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "client_address.hpp"

using namespace kullsync::detail;
using outcome = proxy_header::outcome;

namespace {

/// A PROXY v2 header as HAProxy's send-proxy-v2 writes it for a TCP/IPv4
/// client 127.0.0.2:40000 -> 127.0.0.1:5000, with one TLV after the
/// addresses (PP2_TYPE_NOOP, 3 bytes).
std::string v2_ipv4(uint8_t command = 0x21) {
  std::string h{"\r\n\r\n\0\r\nQUIT\n", 12};
  h += static_cast<char>(command); // version 2, PROXY (or LOCAL: 0x20)
  h += '\x11';                     // AF_INET, STREAM
  h += '\x00';
  h += static_cast<char>(12 + 6);
  h += std::string{"\x7f\x00\x00\x02", 4} + std::string{"\x7f\x00\x00\x01", 4};
  h += "\x9c\x40";           // 40000
  h += "\x13\x88";           // 5000
  h += std::string{"\x04\x00\x03xyz", 6}; // NOOP TLV
  return h;
}

std::string v2_ipv6(const std::string& src16) {
  std::string h{"\r\n\r\n\0\r\nQUIT\n", 12};
  h += "\x21\x21";
  h += '\x00';
  h += static_cast<char>(36);
  h += src16 + std::string(15, '\0') + "\x01" + "\x9c\x40\x13\x88";
  return h;
}

} // namespace

TEST(client_address, trusted_networks) {
  auto set = address_set::parse("10.0.0.0/8, 192.168.1.7,::1/128,2001:db8::/32,::ffff:172.16.0.0/108");
  EXPECT_TRUE(set.contains("10.1.2.3"));
  EXPECT_TRUE(set.contains("::ffff:10.1.2.3")) << "IPv4 seen through a dual-stack listener";
  EXPECT_FALSE(set.contains("11.0.0.1"));
  EXPECT_TRUE(set.contains("192.168.1.7"));
  EXPECT_FALSE(set.contains("192.168.1.8"));
  EXPECT_TRUE(set.contains("::1"));
  EXPECT_FALSE(set.contains("::2"));
  EXPECT_TRUE(set.contains("2001:db8:1::5"));
  EXPECT_FALSE(set.contains("2001:db9::5"));
  EXPECT_TRUE(set.contains("172.16.9.9")) << "an IPv4 network written as IPv6";
  EXPECT_FALSE(set.contains("172.32.0.1"));
  EXPECT_FALSE(set.contains("not an address"));
  EXPECT_FALSE(set.contains(""));
  EXPECT_TRUE(address_set::parse("").empty());
  EXPECT_TRUE(address_set::parse("0.0.0.0/0").contains("8.8.8.8"));
  EXPECT_FALSE(address_set::parse("0.0.0.0/0").contains("::8")) << "IPv4's all is not IPv6's";
  EXPECT_TRUE(address_set::parse("10.0.0.0/9").contains("10.127.255.255"));
  EXPECT_FALSE(address_set::parse("10.0.0.0/9").contains("10.128.0.0"));
  for (auto* bad : {"10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/x",
                    "example.com", "10.0.0.1,,oops", "::ffff:1.2.3.4/95"}) {
    try {
      address_set::parse(bad);
      ADD_FAILURE() << bad << " was taken";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string{e.what()}.find("is not an IP address or network"), std::string::npos)
        << e.what();
    }
  }
}

TEST(client_address, proxy_v1) {
  auto h = parse_proxy_header("PROXY TCP4 127.0.0.2 127.0.0.1 40000 5000\r\nGET / HTTP/1.1\r\n");
  ASSERT_EQ(h.result, outcome::found) << h.error;
  EXPECT_EQ(h.source, "127.0.0.2");
  EXPECT_EQ(h.length, 43u);
  h = parse_proxy_header("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n");
  ASSERT_EQ(h.result, outcome::found) << h.error;
  EXPECT_EQ(h.source, "2001:db8::1");
  h = parse_proxy_header("PROXY UNKNOWN\r\n");
  ASSERT_EQ(h.result, outcome::found);
  EXPECT_EQ(h.source, "") << "the proxy does not know: the peer stands";
  h = parse_proxy_header("PROXY UNKNOWN ffff:f...f ffff:f...f 65535 65535\r\n");
  EXPECT_EQ(h.result, outcome::found);
  for (auto* bad : {"PROXY TCP4 127.0.0.2 127.0.0.1 40000\r\n",
                    "PROXY TCP4 ::1 127.0.0.1 1 2\r\n", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
                    "PROXY TCP4 127.0.0.2 127.0.0.1 70000 1\r\n",
                    "PROXY TCP4 127.0.0.2 127.0.0.1 01 1\r\n",
                    "PROXY TCP4  127.0.0.2 127.0.0.1 1 1\r\n", "PROXY UDP4 1.2.3.4 1.2.3.4 1 1\r\n",
                    "PROXY \r\n"})
    EXPECT_EQ(parse_proxy_header(bad).result, outcome::invalid) << bad;
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 " + std::string(100, '1')).result, outcome::invalid)
    << "no CRLF within 107 bytes";
  EXPECT_EQ(parse_proxy_header("PROXY TCP4 127.0.0.2 127.0.0.1 40000 5000").result,
            outcome::need_more);
}

TEST(client_address, proxy_v2) {
  auto full = v2_ipv4();
  auto h = parse_proxy_header(full + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(h.result, outcome::found) << h.error;
  EXPECT_EQ(h.source, "127.0.0.2");
  EXPECT_EQ(h.length, full.size()) << "the TLVs are part of the header";
  // Cut anywhere before its end, it needs more.
  for (size_t n = 1; n < full.size(); ++n)
    EXPECT_EQ(parse_proxy_header(full.substr(0, n)).result, outcome::need_more) << n;
  h = parse_proxy_header(v2_ipv4(0x20));
  ASSERT_EQ(h.result, outcome::found);
  EXPECT_EQ(h.source, "") << "LOCAL: the balancer's own health check";
  h = parse_proxy_header(v2_ipv6(std::string{"\x20\x01\x0d\xb8", 4} + std::string(11, '\0') + "\x07"));
  ASSERT_EQ(h.result, outcome::found) << h.error;
  EXPECT_EQ(h.source, "2001:db8::7");
  h = parse_proxy_header(v2_ipv6(std::string(10, '\0') + std::string{"\xff\xff\x0a\x00\x00\x05", 6}));
  ASSERT_EQ(h.result, outcome::found);
  EXPECT_EQ(h.source, "10.0.0.5") << "IPv4-mapped comes out as IPv4";
  auto bad_version = full;
  bad_version[12] = '\x11';
  EXPECT_EQ(parse_proxy_header(bad_version).result, outcome::invalid);
  auto bad_command = full;
  bad_command[12] = '\x22';
  EXPECT_EQ(parse_proxy_header(bad_command).result, outcome::invalid);
  auto short_addresses = full;
  short_addresses[15] = '\x04';
  EXPECT_EQ(parse_proxy_header(short_addresses).result, outcome::invalid);
  auto huge = full;
  huge[14] = '\x10'; // 4096 + 16 bytes
  EXPECT_EQ(parse_proxy_header(huge).result, outcome::invalid);
  auto unix_socket = full;
  unix_socket[13] = '\x31';
  unix_socket[15] = '\x00';
  EXPECT_EQ(parse_proxy_header(unix_socket.substr(0, 16)).source, "");
}

TEST(client_address, requests_without_a_header) {
  for (auto* http : {"GET /ws HTTP/1.1\r\n", "POST /api", "PUT x", "PATCH", "G", "\x16\x03\x01"})
    EXPECT_EQ(parse_proxy_header(http).result, outcome::absent) << http;
  // "P", "PR", "\r\n" could still be one.
  for (auto* prefix : {"P", "PRO", "PROXY", "\r", "\r\n\r\n"})
    EXPECT_EQ(parse_proxy_header(prefix).result, outcome::need_more) << prefix;
  EXPECT_EQ(parse_proxy_header("\r\n\r\nX").result, outcome::absent);
  EXPECT_EQ(parse_proxy_header("").result, outcome::need_more);
}

TEST(client_address, forwarded_for) {
  using sv = std::string_view;
  auto f = forwarded_client({sv{"203.0.113.9, 127.0.0.2"}}, std::nullopt);
  EXPECT_EQ(f.address, "127.0.0.2") << "the last entry: the one the proxy appended";
  f = forwarded_client({sv{"1.1.1.1"}, sv{"2.2.2.2 , 127.0.0.3 "}}, sv{"9.9.9.9"});
  EXPECT_EQ(f.address, "127.0.0.3") << "several fields are one list; X-Real-IP only without it";
  f = forwarded_client({}, sv{" 127.0.0.4"});
  EXPECT_EQ(f.address, "127.0.0.4");
  f = forwarded_client({sv{"::ffff:127.0.0.5"}}, std::nullopt);
  EXPECT_EQ(f.address, "127.0.0.5");
  f = forwarded_client({}, std::nullopt);
  EXPECT_FALSE(f.address);
  EXPECT_TRUE(f.error.empty());
  for (auto* bad : {"127.0.0.2,", "unknown", "127.0.0.2:5000", "1.2.3.4, evil"}) {
    f = forwarded_client({sv{bad}}, std::nullopt);
    EXPECT_FALSE(f.address) << bad;
    EXPECT_NE(f.error.find("IP address"), std::string::npos) << bad;
  }
}

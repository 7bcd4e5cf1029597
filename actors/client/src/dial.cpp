#include "dial.hpp"

#include <algorithm>
#include <cctype>

#include "kullsync/messages/types.hpp"
#include "kullsync/transports/subprotocol.hpp"

namespace kullsync {

std::string query_escape(const std::string& in) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~'
        || c == ':') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

std::string make_message_id_prefix(const std::string& device, int64_t now_ms) {
  // Unique per device across runs: the start time, in base 36.
  static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string t;
  for (auto x = static_cast<uint64_t>(std::max<int64_t>(now_ms, 0)); x > 0; x /= 36)
    t.insert(t.begin(), digits[x % 36]);
  // Ids are at most 64 characters and go out as text: the device's part is
  // cut to 30 bytes, never inside a UTF-8 character.
  size_t n = std::min<size_t>(device.size(), 30);
  while (n > 0 && n < device.size() && (static_cast<unsigned char>(device[n]) & 0xC0) == 0x80)
    --n;
  auto d = device.substr(0, n);
  return (d.empty() ? std::string{"c"} : d) + "-" + (t.empty() ? "0" : t);
}

dial_request make_dial_request(const connection_config& cc, const std::string& url,
                               const std::string& token, const std::string& resume_query) {
  dial_request r{url, {}};
  auto add_query = [&](const std::string& kv) {
    r.target += (r.target.find('?') == std::string::npos ? '?' : '&') + kv;
  };
  if (cc.token_in_header)
    r.headers.emplace_back("Authorization", "Bearer " + token);
  else
    add_query("token=" + query_escape(token));
  // A signed token without a `device` claim leaves the device id to the
  // query: without it the server names a new device on every link, and
  // resent messages would not be recognised as the same (ids are per device).
  // A legacy token ("userId:deviceId") names its device itself.
  if (token != cc.user_id + ":" + cc.device_id && msg::valid_id(cc.device_id))
    add_query("device=" + query_escape(cc.device_id));
  if (cc.offer_v2) {
    r.headers.emplace_back("Sec-WebSocket-Protocol", std::string{v2_subprotocol});
    if (!resume_query.empty())
      add_query(resume_query);
  }
  return r;
}

} // namespace kullsync

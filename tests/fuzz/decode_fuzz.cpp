// libFuzzer target: every frame either decodes or yields a decode_error; a
// decoded frame re-encodes and decodes to the same value.
#include <boost/json/src.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kullsync/messages/codec.hpp"
#include "progress_reader.hpp"

using namespace kullsync::msg;

namespace {

namespace json = boost::json;

// Boost.JSON 1.81 parses some doubles one ULP off, so a re-encoded frame is
// compared as a JSON tree with doubles within a relative 1e-12.
bool same_number(double x, double y) {
  return x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
}

bool same_tree(const json::value& x, const json::value& y) {
  if (x.is_number() && y.is_number())
    return same_number(x.to_number<double>(), y.to_number<double>());
  if (x.kind() != y.kind())
    return false;
  switch (x.kind()) {
    case json::kind::object: {
      auto& a = x.get_object();
      auto& b = y.get_object();
      if (a.size() != b.size())
        return false;
      for (auto& kv : a) {
        auto* other = b.if_contains(kv.key());
        if (other == nullptr || !same_tree(kv.value(), *other))
          return false;
      }
      return true;
    }
    case json::kind::array: {
      auto& a = x.get_array();
      auto& b = y.get_array();
      if (a.size() != b.size())
        return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!same_tree(a[i], b[i]))
          return false;
      return true;
    }
    default:
      return x == y;
  }
}

template <class T>
void check_round_trip(const T& x, decode_result<T> (*decode)(std::string_view,
                                                             const decode_limits&)) {
  auto text = encode(x);
  decode_limits lim;
  lim.max_frame_bytes = 1 << 24; // re-encoding may grow escapes
  lim.max_depth = 1024;
  auto back = decode(text, lim);
  if (!back)
    std::abort();
  json::parse_options opts;
  opts.max_depth = 1024;
  auto a = json::parse(text, {}, opts);
  auto b = json::parse(encode(*back), {}, opts);
  if (!same_tree(a, b))
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  decode_limits lim;
  lim.max_frame_bytes = 64 * 1024;
  // The one-pass progress reader must agree with the general decoder on
  // every frame it accepts.
  if (auto fast = detail::read_progress_frame(text, lim.max_depth)) {
    auto general = detail::decode_server_general(text, lim);
    if (!general || !(*general == *fast))
      std::abort();
  }
  if (auto s = decode_server(text, lim)) {
    // Floats that are not integers round on decode and stay put afterwards.
    check_round_trip(*s, decode_server);
  } else if (s.error().detail.empty()) {
    std::abort();
  }
  if (auto c = decode_client(text, lim)) {
    check_round_trip(*c, decode_client);
  } else if (c.error().detail.empty()) {
    std::abort();
  }
  // The server's path: the payload kept verbatim must be valid JSON.
  lim.keep_raw_payload = true;
  if (auto c = decode_client(text, lim); c && !c->raw_payload.empty()) {
    boost::system::error_code ec;
    json::parse(c->raw_payload, ec);
    if (ec)
      std::abort();
  }
  return 0;
}

#pragma once

// Private to the broker: one Redis reply, copied out of hiredis so that it
// can travel to the broker actor as a message.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace kullsync::broker {

struct redis_value {
  /// `lost`: no reply at all (not connected, or the link went down).
  enum kind_t : uint8_t { nil, integer, string, status, error, array, lost };
  uint8_t kind = nil;
  int64_t number = 0;
  std::string str; // string, status or error text
  std::vector<redis_value> elements;

  bool is_error() const { return kind == error || kind == lost; }
  static redis_value fail(std::string why) {
    redis_value v;
    v.kind = lost;
    v.str = std::move(why);
    return v;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, redis_value& x) {
  return f(caf::meta::type_name("redis_value"), x.kind, x.number, x.str, x.elements);
}

} // namespace kullsync::broker

#pragma once

// Private to the broker: one Redis reply, copied out of hiredis so that it
// can travel to the broker actor as a message.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace kullsync::broker {

struct redis_value {
  /// No reply at all: `unsent`, the command never left this node (not
  /// connected); `lost`, it was handed to the link, which went down before
  /// the reply came (Redis may have run it, or may still).
  enum kind_t : uint8_t { nil, integer, string, status, error, array, unsent, lost };
  uint8_t kind = nil;
  int64_t number = 0;
  std::string str; // string, status or error text
  std::vector<redis_value> elements;

  bool is_error() const { return kind == error || kind == unsent || kind == lost; }
  static redis_value not_sent(std::string why) { return failure(unsent, std::move(why)); }
  static redis_value cut_off(std::string why) { return failure(lost, std::move(why)); }

private:
  static redis_value failure(kind_t k, std::string why) {
    redis_value v;
    v.kind = k;
    v.str = std::move(why);
    return v;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, redis_value& x) {
  return f(caf::meta::type_name("redis_value"), x.kind, x.number, x.str, x.elements);
}

} // namespace kullsync::broker

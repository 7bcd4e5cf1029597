#pragma once

// Numbers read from text the outside sent (Redis replies, files, query
// strings): all of it must be the number, or it is none.

#include <charconv>
#include <optional>
#include <string_view>

namespace kullsync {

/// All of `s` as a number of type T (decimal; no sign for an unsigned T),
/// or nothing.
template <class T>
std::optional<T> to_int(std::string_view s) {
  T x = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return x;
}

} // namespace kullsync

#pragma once

// Checks of command-line values that CLI11's own do not make.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

namespace kullsync::app {

/// A number in [lo, hi]. CLI::Range compares with `<` and `>`, which NaN
/// passes ("nan" parses), so a rate of NaN would switch its limit off.
inline CLI::Validator finite_range(double lo, double hi) {
  auto num = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", x);
    return std::string{b};
  };
  auto range = "[" + num(lo) + " - " + num(hi) + "]";
  return CLI::Validator(
    [lo, hi, range](std::string& s) -> std::string {
      double v = 0;
      try {
        size_t used = 0;
        v = std::stod(s, &used);
        if (used != s.size())
          return "'" + s + "' is not a number";
      } catch (const std::exception&) {
        return "'" + s + "' is not a number";
      }
      if (!std::isfinite(v) || v < lo || v > hi)
        return "value " + s + " not in range " + range;
      return {};
    },
    "in " + range);
}

/// A whole number from 0 to 2^63-1, checked as written: CLI11 reads a
/// larger one as the largest (and calls -1 out of a range up to 1.8e308).
inline const CLI::Validator whole_number{
  [](std::string& s) -> std::string {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < 0)
      return "'" + s + "' is not a whole number from 0 to 9223372036854775807";
    return {};
  },
  "WHOLE"};

/// A value that may not be empty: an empty one is a mistake (an unset shell
/// variable), not a way to leave the option out.
inline const CLI::Validator non_empty{
  [](std::string& s) -> std::string { return s.empty() ? "must not be empty" : ""; },
  "NONEMPTY"};

} // namespace kullsync::app

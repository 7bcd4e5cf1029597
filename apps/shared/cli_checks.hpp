#pragma once

// Checks of command-line values that CLI11's own do not make.

#include <cmath>
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

/// A value that may not be empty: an empty one is a mistake (an unset shell
/// variable), not a way to leave the option out.
inline const CLI::Validator non_empty{
  [](std::string& s) -> std::string { return s.empty() ? "must not be empty" : ""; },
  "NONEMPTY"};

} // namespace kullsync::app

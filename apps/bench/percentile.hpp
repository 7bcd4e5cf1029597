#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace kullsync::bench {

/// The p-quantile (0..1) of ascending `sorted`, nearest rank; T{} if empty.
template <class T>
T percentile(const std::vector<T>& sorted, double p) {
  if (sorted.empty())
    return T{};
  auto i = static_cast<size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, i)];
}

} // namespace kullsync::bench

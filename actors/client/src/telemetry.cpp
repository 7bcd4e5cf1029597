#include "kullsync/client/telemetry.hpp"

#include <algorithm>
#include <tuple>

namespace kullsync {

histogram_counts histogram_counts::with_bounds(std::vector<int64_t> bounds) {
  histogram_counts h;
  h.counts.assign(bounds.size() + 1, 0);
  h.bounds = std::move(bounds);
  return h;
}

void histogram_counts::observe(int64_t v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i])
    ++i;
  if (counts.size() != bounds.size() + 1)
    counts.assign(bounds.size() + 1, 0);
  ++counts[i];
  ++count;
  sum += v;
  max = std::max(max, v);
}

int64_t histogram_counts::quantile(double q) const {
  if (count == 0)
    return 0;
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count - 1)) + 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank)
      return i < bounds.size() ? std::min(bounds[i], max) : max;
  }
  return max;
}

bool operator==(const histogram_counts& x, const histogram_counts& y) {
  return std::tie(x.bounds, x.counts, x.count, x.sum, x.max)
         == std::tie(y.bounds, y.counts, y.count, y.sum, y.max);
}

bool operator==(const client_telemetry& x, const client_telemetry& y) {
  auto f = [](const client_telemetry& t) {
    return std::tie(t.dials, t.connects, t.reconnects, t.time_to_live, t.attempts, t.ack_rtt,
                    t.decode_errors, t.replayed, t.resumes, t.snapshots, t.gaps,
                    t.duplicates, t.queue_depth, t.queue_dropped);
  };
  return f(x) == f(y);
}

} // namespace kullsync

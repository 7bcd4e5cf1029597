#pragma once

/// Metrics in the Prometheus text exposition format (version 0.0.4), without
/// a client library: counters, gauges and histograms whose updates are
/// atomic adds (no lock, no allocation), and a writer that renders them when
/// scraped. Names follow Prometheus conventions: `kullsync_` prefix,
/// `_total` for counters, base units (seconds, bytes), and label values from
/// bounded sets (never a user or device id).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kullsync::metrics {

class counter {
public:
  void add(uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
  std::atomic<uint64_t> v_{0};
};

/// A histogram of durations (or sizes) with fixed bucket bounds; observing is
/// a short scan of at most 16 bounds and three atomic adds.
class histogram {
public:
  static constexpr size_t max_buckets = 16;

  /// Latency buckets in seconds, 100 µs to 10 s.
  static constexpr std::array<double, 15> latency_seconds{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 10};

  /// `bounds`: upper bounds, ascending, at most 16 (+Inf is implied).
  template <size_t N>
  explicit histogram(const std::array<double, N>& bounds) {
    static_assert(N <= max_buckets);
    for (double b : bounds)
      bounds_[n_++] = b;
  }

  void observe(double v) noexcept;

  size_t size() const { return n_; }
  double bound(size_t i) const { return bounds_[i]; }
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;

private:
  std::array<double, max_buckets> bounds_{};
  size_t n_ = 0;
  std::array<std::atomic<uint64_t>, max_buckets + 1> counts_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_nanos_{0}; // the sum in units of 1e-9
};

using labels = std::vector<std::pair<std::string_view, std::string>>;

/// Renders metric families; each family's HELP and TYPE come once, before
/// its samples.
class writer {
public:
  void counter(std::string_view name, std::string_view help, double value,
               const labels& l = {});
  void gauge(std::string_view name, std::string_view help, double value,
             const labels& l = {});
  void histogram(std::string_view name, std::string_view help, const metrics::histogram& h,
                 const labels& l = {});

  /// The process's CPU seconds, resident memory, open descriptors and start
  /// time, under the standard `process_` names (from /proc/self).
  void process();

  const std::string& text() const { return out_; }

private:
  void family(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, std::string_view suffix, const labels& l,
              double value, const char* extra_label = nullptr,
              const std::string& extra_value = {});

  std::string out_;
  std::string last_family_;
};

// -- metric groups: each declared once ----------------------------------------

enum class kind : uint8_t {
  counter,
  gauge,
  none, // counted (stats, tests), not exposed
};

/// How a scrape shows one metric of a group. `label`: "name=value", or "".
struct info {
  kind what;
  const char* name;
  const char* help;
  const char* label;
};

/// Writes `value` as `i` says; nothing for kind::none.
void write(writer& w, const info& i, double value);

inline double value_of(uint64_t v) { return static_cast<double>(v); }
inline double value_of(const std::atomic<uint64_t>& v) {
  return static_cast<double>(v.load(std::memory_order_relaxed));
}
inline uint64_t load(uint64_t v) { return v; }
inline uint64_t load(const std::atomic<uint64_t>& v) {
  return v.load(std::memory_order_relaxed);
}

} // namespace kullsync::metrics

// A metric group is one list, `LIST(X)` calling `X(member, kind, name, help,
// label)` once per metric, from which KULLSYNC_METRIC_GROUP(Group, LIST)
// declares, in the current namespace:
// - `Group<T>`: each metric a member of type T (std::atomic<uint64_t> where
//   it is counted, uint64_t in a snapshot or an actor's own state);
// - `visit_Group(f, groups...)`: f(info, group.member...) per metric, in order;
// - `write_group(writer, group)`: the group's part of a scrape;
// - `snapshot_of(group)`: a group of atomics read into plain numbers;
// - `group += other`: sums (a node's counters are its shards' sum).
// KULLSYNC_METRIC_FIELDS(LIST) expands to `, x.member` for each metric, of a
// group named `x` (an inspect overload lists them so).
#define KULLSYNC_METRIC_MEMBER(member, what, name, help, label) T member{};
#define KULLSYNC_METRIC_VISIT(member, what, name, help, label)                     \
  f(::kullsync::metrics::info{::kullsync::metrics::kind::what, name, help, label}, \
    vs.member...);
#define KULLSYNC_METRIC_COMMA_FIELD(member, what, name, help, label) , x.member

#define KULLSYNC_METRIC_GROUP(Group, LIST)                                       \
  template <class T>                                                             \
  struct Group {                                                                 \
    LIST(KULLSYNC_METRIC_MEMBER)                                                 \
  };                                                                             \
  template <class F, class... Vs>                                                \
  void visit_##Group(F&& f, Vs&... vs) {                                         \
    LIST(KULLSYNC_METRIC_VISIT)                                                  \
  }                                                                              \
  template <class T>                                                             \
  void write_group(::kullsync::metrics::writer& w, const Group<T>& g) {          \
    visit_##Group(                                                               \
      [&w](const ::kullsync::metrics::info& i, const T& v) {                     \
        ::kullsync::metrics::write(w, i, ::kullsync::metrics::value_of(v));      \
      },                                                                         \
      g);                                                                        \
  }                                                                              \
  inline Group<uint64_t> snapshot_of(const Group<std::atomic<uint64_t>>& g) {    \
    Group<uint64_t> s;                                                           \
    visit_##Group([](const ::kullsync::metrics::info&, uint64_t& out,            \
                     const std::atomic<uint64_t>& in) {                          \
                    out = ::kullsync::metrics::load(in);                         \
                  },                                                             \
                  s, g);                                                         \
    return s;                                                                    \
  }                                                                              \
  inline Group<uint64_t>& operator+=(Group<uint64_t>& a, const Group<uint64_t>& b) { \
    visit_##Group([](const ::kullsync::metrics::info&, uint64_t& x,              \
                     const uint64_t& y) { x += y; },                             \
                  a, b);                                                         \
    return a;                                                                    \
  }

#define KULLSYNC_METRIC_FIELDS(LIST) LIST(KULLSYNC_METRIC_COMMA_FIELD)

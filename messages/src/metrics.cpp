#include "kullsync/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace kullsync::metrics {

void histogram::observe(double v) noexcept {
  size_t i = 0;
  while (i < n_ && v > bounds_[i])
    ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (v > 0)
    sum_nanos_.fetch_add(static_cast<uint64_t>(v * 1e9), std::memory_order_relaxed);
}

double histogram::sum() const {
  return static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
}

namespace {

std::string number(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v))
    return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

/// A label value as the exposition format quotes it.
void quoted(std::string& out, const std::string& v) {
  out += '"';
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  out += '"';
}

} // namespace

void writer::family(std::string_view name, std::string_view help, std::string_view type) {
  if (last_family_ == name)
    return;
  last_family_ = std::string{name};
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void writer::sample(std::string_view name, std::string_view suffix, const labels& l,
                    double value, const char* extra_label, const std::string& extra_value) {
  out_ += name;
  out_ += suffix;
  if (!l.empty() || extra_label != nullptr) {
    out_ += '{';
    bool first = true;
    for (auto& [k, v] : l) {
      if (!first)
        out_ += ',';
      first = false;
      out_ += k;
      out_ += '=';
      quoted(out_, v);
    }
    if (extra_label != nullptr) {
      if (!first)
        out_ += ',';
      out_ += extra_label;
      out_ += '=';
      quoted(out_, extra_value);
    }
    out_ += '}';
  }
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

void writer::counter(std::string_view name, std::string_view help, double value,
                     const labels& l) {
  family(name, help, "counter");
  sample(name, "", l, value);
}

void writer::gauge(std::string_view name, std::string_view help, double value,
                   const labels& l) {
  family(name, help, "gauge");
  sample(name, "", l, value);
}

void write(writer& w, const info& i, double value) {
  labels l;
  std::string_view label = i.label;
  if (auto eq = label.find('='); eq != std::string_view::npos)
    l.emplace_back(label.substr(0, eq), std::string{label.substr(eq + 1)});
  switch (i.what) {
    case kind::counter: w.counter(i.name, i.help, value, l); break;
    case kind::gauge: w.gauge(i.name, i.help, value, l); break;
    case kind::none: break;
  }
}

void writer::histogram(std::string_view name, std::string_view help,
                       const metrics::histogram& h, const labels& l) {
  family(name, help, "histogram");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    cumulative += h.bucket(i);
    sample(name, "_bucket", l, static_cast<double>(cumulative), "le", number(h.bound(i)));
  }
  cumulative += h.bucket(h.size());
  sample(name, "_bucket", l, static_cast<double>(cumulative), "le", "+Inf");
  sample(name, "_sum", l, h.sum());
  sample(name, "_count", l, static_cast<double>(h.count()));
}

void writer::process() {
  // /proc/self/stat: utime and stime (fields 14, 15) in clock ticks, start
  // time (22) in ticks since boot, rss (24) in pages.
  std::ifstream stat{"/proc/self/stat"};
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  if (close == std::string::npos)
    return;
  std::istringstream rest{line.substr(close + 2)};
  std::vector<std::string> f{"", "", ""}; // fields 1 and 2 are before ')'
  for (std::string x; rest >> x;)
    f.push_back(x);
  if (f.size() < 25)
    return;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  double cpu = (std::stod(f[14]) + std::stod(f[15])) / ticks;
  counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", cpu);
  gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
        std::stod(f[24]) * page);
  double boot = 0;
  std::ifstream procstat{"/proc/stat"};
  for (std::string l; std::getline(procstat, l);)
    if (l.rfind("btime ", 0) == 0)
      boot = std::stod(l.substr(6));
  gauge("process_start_time_seconds", "Start time of the process since the epoch, in seconds.",
        boot + std::stod(f[22]) / ticks);
  size_t fds = 0;
  if (auto* d = opendir("/proc/self/fd")) {
    while (auto* e = readdir(d))
      fds += e->d_name[0] != '.';
    closedir(d);
  }
  gauge("process_open_fds", "Number of open file descriptors.", static_cast<double>(fds));
  gauge("process_max_fds", "Maximum number of open file descriptors.",
        static_cast<double>(sysconf(_SC_OPEN_MAX)));
}

} // namespace kullsync::metrics

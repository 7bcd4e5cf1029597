// Each metric group is one list (KULLSYNC_METRIC_GROUP): its exposition, its
// snapshot and its sums come from that list, and so do these checks. A
// metric added to a list is exposed under its name and label, typed as its
// kind, read by snapshot_of and summed by +=, with nothing else to edit.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kullsync/metrics.hpp"
#include "kullsync/server/counters.hpp"
#include "kullsync/server/hub_stats.hpp"
#include "kullsync/transports/beast_server.hpp"
#include "redis_link.hpp"

using namespace kullsync;

namespace {

/// The sample line of metric `i` worth `v`, as the writer renders it.
std::string sample_line(const metrics::info& i, uint64_t v) {
  std::string label = i.label;
  std::string line = i.name;
  if (auto eq = label.find('='); eq != std::string::npos)
    line += "{" + label.substr(0, eq) + "=\"" + label.substr(eq + 1) + "\"}";
  return line + " " + std::to_string(v);
}

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in{text};
  for (std::string l; std::getline(in, l);)
    if (l == line)
      return true;
  return false;
}

/// Checks one group through `visit` (its visit_Group function).
template <template <class> class Group, class Visit>
void check_group(Visit visit) {
  Group<std::atomic<uint64_t>> live;
  uint64_t next = 3;
  visit([&](const metrics::info&, std::atomic<uint64_t>& x) { x = next; next += 7; }, live);

  metrics::writer w;
  write_group(w, live);
  const auto& text = w.text();
  std::set<std::string> seen;
  size_t exposed = 0;
  visit(
    [&](const metrics::info& i, const std::atomic<uint64_t>& x) {
      if (i.what == metrics::kind::none) {
        EXPECT_EQ(std::string{i.name}, "") << "an unexposed metric has no name";
        return;
      }
      ++exposed;
      std::string name = i.name;
      EXPECT_EQ(name.rfind("kullsync_", 0), 0u) << name;
      bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
      EXPECT_EQ(total, i.what == metrics::kind::counter) << name << ": counters end in _total";
      EXPECT_FALSE(std::string{i.help}.empty()) << name;
      EXPECT_TRUE(seen.insert(name + "|" + i.label).second) << name << " listed twice";
      auto line = sample_line(i, x.load());
      EXPECT_TRUE(has_line(text, line)) << "not exposed: " << line << "\n" << text;
      auto type = "# TYPE " + name + (i.what == metrics::kind::counter ? " counter" : " gauge");
      EXPECT_TRUE(has_line(text, type)) << type;
    },
    live);
  EXPECT_GT(exposed, 0u);

  // The rows of one family (one name, several labels) are adjacent and
  // agree on kind and help: the writer takes HELP and TYPE from the first,
  // and a second TYPE line would make Prometheus refuse the whole scrape.
  std::vector<metrics::info> rows;
  visit([&](const metrics::info& i, const std::atomic<uint64_t>&) {
    if (i.what != metrics::kind::none)
      rows.push_back(i);
  }, live);
  std::set<std::string> done;
  for (size_t k = 0; k < rows.size(); ++k) {
    std::string name = rows[k].name;
    if (k > 0 && name == rows[k - 1].name) {
      EXPECT_EQ(rows[k].what, rows[k - 1].what) << name;
      EXPECT_EQ(std::string{rows[k].help}, rows[k - 1].help) << name;
      continue;
    }
    EXPECT_TRUE(done.insert(name).second) << name << ": its rows are not adjacent";
    size_t types = 0;
    std::istringstream in{text};
    for (std::string l; std::getline(in, l);)
      types += l.rfind("# TYPE " + name + " ", 0) == 0;
    EXPECT_EQ(types, 1u) << name;
  }

  auto snap = snapshot_of(live);
  auto twice = snap;
  twice += snap;
  visit(
    [](const metrics::info& i, const uint64_t& s, const uint64_t& t,
       const std::atomic<uint64_t>& x) {
      EXPECT_EQ(s, x.load()) << i.name << i.help;
      EXPECT_EQ(t, 2 * x.load()) << i.name << i.help;
    },
    snap, twice, live);
}

} // namespace

TEST(metric_groups, the_transports_list_drives_its_exposition_snapshot_and_sums) {
  check_group<transport_metrics>(
    [](auto&& f, auto&... gs) { visit_transport_metrics(f, gs...); });
}

TEST(metric_groups, the_hubs_list_drives_its_exposition_snapshot_and_sums) {
  check_group<server::hub_metrics>(
    [](auto&& f, auto&... gs) { server::visit_hub_metrics(f, gs...); });
}

TEST(metric_groups, the_servers_list_drives_its_exposition_snapshot_and_sums) {
  check_group<server::server_metrics>(
    [](auto&& f, auto&... gs) { server::visit_server_metrics(f, gs...); });
}

TEST(metric_groups, the_brokers_list_drives_its_exposition_snapshot_and_sums) {
  check_group<broker::broker_metrics>(
    [](auto&& f, auto&... gs) { broker::visit_broker_metrics(f, gs...); });
}

TEST(metric_groups, a_label_splits_one_family_into_samples) {
  server::hub_stats s;
  s.v1_sockets = 2;
  s.v2_sockets = 5;
  metrics::writer w;
  write_group(w, s);
  EXPECT_TRUE(has_line(w.text(), "kullsync_sockets_open{protocol=\"v1\"} 2")) << w.text();
  EXPECT_TRUE(has_line(w.text(), "kullsync_sockets_open{protocol=\"v2\"} 5")) << w.text();
  auto families = 0;
  std::istringstream in{w.text()};
  for (std::string l; std::getline(in, l);)
    families += l == "# TYPE kullsync_sockets_open gauge";
  EXPECT_EQ(families, 1) << "one family, HELP and TYPE once";
  EXPECT_EQ(server::sockets_of(s), 7u);
}

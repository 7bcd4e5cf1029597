// What a /metrics scrape shows of the server's actors: the hubs' counters
// (summed over the shards; their list is hub_stats.hpp's) and the counters
// every session, the acceptor and the HTTP API share (counters.hpp's list,
// and the counts by close code and message type).
#include "metrics_report.hpp"

namespace kullsync::server {

namespace {

uint64_t get(const std::atomic<uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}

/// The counts by close code and by message type, and the ACK latency.
void sessions(metrics::writer& w, const server_counters& c) {
  for (size_t i = 0; i <= counted_close_codes.size(); ++i)
    w.counter("kullsync_closes_total", "Sockets closed, by close code.",
              static_cast<double>(get(c.closes[i])),
              {{"code", i < counted_close_codes.size()
                          ? std::to_string(counted_close_codes[i])
                          : std::string{"other"}}});
  for (size_t i = 0; i < counted_message_types.size(); ++i)
    w.counter("kullsync_messages_in_total", "Client messages received, by type.",
              static_cast<double>(get(c.messages_in[i])),
              {{"type", counted_message_types[i]}});
  w.histogram("kullsync_ack_latency_seconds",
              "From a v2 client message's arrival to its ACK leaving the hub.", c.ack_latency);
}

} // namespace

void write_server_metrics(metrics::writer& w, const hub_stats& hubs,
                          const server_counters& counters) {
  write_group(w, hubs);
  write_group(w, counters);
  sessions(w, counters);
}

} // namespace kullsync::server

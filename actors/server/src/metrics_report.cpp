// What a /metrics scrape shows of the server's actors: the hubs' counters
// (summed over the shards; their list is hub_stats.hpp's) and the counters
// every session, the acceptor and the HTTP API share.
#include "metrics_report.hpp"

namespace kullsync::server {

namespace {

uint64_t get(const std::atomic<uint64_t>& c) {
  return c.load(std::memory_order_relaxed);
}

void sessions(metrics::writer& w, const server_counters& c) {
  w.counter("kullsync_connects_total", "Sockets joined to their user.",
            static_cast<double>(get(c.connects)));
  for (size_t i = 0; i <= counted_close_codes.size(); ++i)
    w.counter("kullsync_closes_total", i == 0 ? "Sockets closed, by close code." : "",
              static_cast<double>(get(c.closes[i])),
              {{"code", i < counted_close_codes.size()
                          ? std::to_string(counted_close_codes[i])
                          : std::string{"other"}}});
  for (size_t i = 0; i < counted_message_types.size(); ++i)
    w.counter("kullsync_messages_in_total", i == 0 ? "Client messages received, by type." : "",
              static_cast<double>(get(c.messages_in[i])),
              {{"type", counted_message_types[i]}});
  w.histogram("kullsync_ack_latency_seconds",
              "From a v2 client message's arrival to its ACK leaving the hub.", c.ack_latency);
}

void refusals(metrics::writer& w, const server_counters& c) {
  w.counter("kullsync_auth_refusals_total", "Sockets refused at authentication, by close code.",
            static_cast<double>(get(c.refused_no_token)), {{"code", "4001"}});
  w.counter("kullsync_auth_refusals_total", "", static_cast<double>(get(c.refused_invalid_token)),
            {{"code", "4002"}});
  w.counter("kullsync_auth_refusals_total", "", static_cast<double>(get(c.refused_expired_token)),
            {{"code", "4003"}});
  w.counter("kullsync_legacy_tokens_total", "Sockets let in with an unsigned userId:deviceId "
            "(jwt+legacy).", static_cast<double>(get(c.legacy_tokens)));
  w.counter("kullsync_token_refreshes_total", "REFRESH answered with REFRESHED.",
            static_cast<double>(get(c.refreshes)));
  w.counter("kullsync_token_expiry_closes_total", "Sockets closed 4003 at their token's expiry.",
            static_cast<double>(get(c.expired_closes)));
  struct { const char* limit; const std::atomic<uint64_t>& n; } limits[] = {
    {"client_message", c.rate_limited_messages}, {"client_flood_close", c.rate_limited_closes},
    {"ip_sockets", c.ip_socket_cap},             {"ip_upgrades", c.ip_upgrade_rate},
    {"api_key_rate", c.http_rate_limited},
  };
  for (auto& l : limits)
    w.counter("kullsync_rate_limit_refusals_total", "Refusals by a rate limit or cap, by limit.",
              static_cast<double>(get(l.n)), {{"limit", l.limit}});
  w.counter("kullsync_http_unauthorized_total", "HTTP requests without a valid API key (401).",
            static_cast<double>(get(c.http_unauthorized)));
  w.counter("kullsync_invalid_ids_total", "Ids refused (not UTF-8, control characters, length).",
            static_cast<double>(get(c.invalid_ids)));
}

} // namespace

void write_server_metrics(metrics::writer& w, const hub_stats& hubs,
                          const server_counters& counters) {
  write_group(w, hubs);
  sessions(w, counters);
  refusals(w, counters);
}

} // namespace kullsync::server

#pragma once

// Private to the server: the server actors' part of a /metrics scrape.

#include "kullsync/metrics.hpp"
#include "kullsync/server/counters.hpp"
#include "hub_protocol.hpp"

namespace kullsync::server {

void write_server_metrics(metrics::writer& w, const hub_stats& hubs,
                          const server_counters& counters);

} // namespace kullsync::server

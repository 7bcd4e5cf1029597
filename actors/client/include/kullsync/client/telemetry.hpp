#pragma once

/// How an engine's connection really behaves, for the app that embeds it:
/// connects and reconnects, the time from a lost link to a live one again,
/// attempts per reconnect, ACK round trips, what the stream had to repair.
/// A plain struct: `get(telemetry)` on the engine's connection returns it,
/// and every `sync_state` carries the latest.

#include <cstdint>
#include <vector>

namespace kullsync {

/// Counts of values in fixed buckets (upper bounds; one more bucket above
/// the last), with their sum and maximum.
struct histogram_counts {
  std::vector<int64_t> bounds;
  std::vector<uint64_t> counts; // bounds.size() + 1
  uint64_t count = 0;
  int64_t sum = 0;
  int64_t max = 0;

  static histogram_counts with_bounds(std::vector<int64_t> bounds);
  void observe(int64_t v);
  /// The upper bound of the bucket holding quantile `q` (0..1), `max` for
  /// the last bucket; 0 when empty.
  int64_t quantile(double q) const;
};

bool operator==(const histogram_counts& x, const histogram_counts& y);

struct client_telemetry {
  uint64_t dials = 0;      // handshakes attempted
  uint64_t connects = 0;   // links that became live (the first included)
  uint64_t reconnects = 0; // live again after losing a live link
  /// From losing a live link to the next live one, ms.
  histogram_counts time_to_live =
    histogram_counts::with_bounds({100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000});
  /// Dials each reconnect took.
  histogram_counts attempts = histogram_counts::with_bounds({1, 2, 3, 5, 10});
  /// From sending a v2 client message to its ACK, ms.
  histogram_counts ack_rtt =
    histogram_counts::with_bounds({5, 10, 25, 50, 100, 250, 500, 1000, 5000});
  uint64_t decode_errors = 0; // frames that did not decode
  // The stream's own counters (stream_status), in one place.
  uint64_t replayed = 0;      // messages resumes replayed
  uint64_t resumes = 0;       // (re)connects that resumed
  uint64_t snapshots = 0;     // (re)connects that resynced from a SNAPSHOT
  uint64_t gaps = 0;          // positions skipped (each led to a resume)
  uint64_t duplicates = 0;    // messages dropped as already applied
  uint64_t queue_depth = 0;   // client messages not acknowledged yet
  uint64_t queue_dropped = 0; // refused: the queue was full (NACK outbox_full)
};

bool operator==(const client_telemetry& x, const client_telemetry& y);

} // namespace kullsync

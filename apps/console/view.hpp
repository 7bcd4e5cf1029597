#pragma once

// How the console shows a sync_state: one JSON line, one plain line, or a
// full-screen ncurses dashboard.

#include <chrono>
#include <map>
#include <string>

#include "kullsync/client/sync_state.hpp"

namespace kullsync::console {

using steady = std::chrono::steady_clock;

/// What the views need besides the state: when things arrived, for the
/// countdowns (ETA, next retry).
struct view_clock {
  steady::time_point status_at{};
  std::map<std::string, std::pair<double, steady::time_point>> eta_at;

  /// Notes arrival times of a new state.
  void update(const sync_state& prev, const sync_state& next);
  /// Seconds left of a shoot's ETA now, if it has one.
  std::optional<double> eta_left(const msg::shoot_progress& p) const;
  /// Seconds until the next retry while reconnecting.
  double retry_left(const sync_state& s) const;
};

/// {"connection","attempt","error","credits","shoots","devices","lastPrompt",...}
/// v1, or v2's position and how the last reconnect went (recovered with so
/// many replayed, or resynced from a snapshot).
std::string stream_text(const sync_state& s);
std::string json_line(const sync_state& s, const view_clock& c);
/// One line of what the link went through (connects, reconnects, time to
/// live again, ACK round trip, queue, gaps).
std::string telemetry_text(const client_telemetry& t);

/// A one-line summary for logs and pipes.
std::string plain_line(const sync_state& s, const view_clock& c);

struct screen_info {
  std::string endpoint;
  std::string env; // "dev", "staging", "prod" or "custom"
  std::string user;
  std::string device;
};

/// Full-screen dashboard (ncurses). All calls from one thread.
class dashboard {
public:
  dashboard();
  ~dashboard();
  void draw(const sync_state& s, const view_clock& c, const screen_info& info);
  /// A key pressed within `wait`, or -1.
  int key(std::chrono::milliseconds wait);
};

} // namespace kullsync::console

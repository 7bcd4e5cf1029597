#pragma once

// Private to the client engine: the device's side of its user's v2 stream,
// link after link. No CAF: the connection asks it what each message means
// and what to send when a link opens.
//
// - The position: the epoch (from WELCOME) and the last position applied. A
//   message at or below it is a duplicate (dropped); one that skips a
//   position means the link lost something (the connection resumes at once).
// - The outbox: UPDATE_PROGRESS with ids (the app's, or numbered here),
//   kept until the server ACKs or NACKs them and resent with the same ids on
//   every new link, so that none is lost while offline nor applied twice. A
//   NACK that says "not now" (`unavailable`, `rate_limited`) keeps the
//   message for the ack timeout to send again. Bounded: a message that finds
//   it full is refused (NACK `outbox_full`), and of what was not sent yet
//   only the latest per shoot stays (the one replaced: NACK `superseded`).
//   Every message taken thus ends in one ACK or NACK, with its id.
// - The window (v2): at most so many messages are out unanswered on a link;
//   the rest wait their turn in order. A NACK `rate_limited` halves it, an
//   ACK widens it by one. A server closes a socket whose refusals in a
//   second pass its burst (4008): an outbox resent whole on every link would
//   be closed on every link, and never get through.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kullsync/client/config.hpp"
#include "kullsync/client/status.hpp"
#include "kullsync/client/store.hpp"
#include "kullsync/messages/types.hpp"
#include "kullsync/testing/stream_mutation.hpp"

namespace kullsync {

class stream_link {
public:
  stream_link() : stream_link(256, "") {}
  stream_link(size_t outbox_limit, std::string id_prefix,
              sim::stream_mutation mutation = sim::stream_mutation::none);

  /// What a store kept from a run before.
  void restore(const saved_stream& s);
  void restore(const saved_outbox& o);
  /// A message whose frame is longer is refused (NACK too_large) instead of
  /// kept: the server closes a link with 1009 on a frame over its limit, so
  /// kept, it would close every later link before anything behind it.
  void limit_message_bytes(size_t n) { max_bytes_ = n; }

  /// "epoch=...&since=..." to resume with; empty without a position.
  std::string resume_query() const;

  /// A link opened (v2 or v1): the messages to send on it now, in order
  /// (`now_ms`: when they are sent).
  std::vector<msg::client_message> opened(bool v2, int64_t now_ms = 0);

  /// v2: what was sent at or before `before_ms` and is still not
  /// acknowledged, to send again (same ids: the server applies each once).
  std::vector<msg::client_message> overdue(int64_t before_ms, int64_t now_ms);
  /// v2: what waited for room in the window and now fits, to send now.
  std::vector<msg::client_message> sendable(int64_t now_ms);
  /// The most messages out unanswered on a link (at least 1).
  static constexpr size_t max_window = 32;
  size_t window() const { return window_; }
  void closed() { v2_ = false; }

  enum class verdict : uint8_t { apply, drop, gap };
  /// What `m` means for the stream; updates the position, the outbox, the
  /// counters.
  verdict on_message(const msg::server_message& m);

  /// Takes an UPDATE_PROGRESS: on v2, or while no link is `ready`, it keeps
  /// the app's id or gets one, and stays until acknowledged (or, on a v1
  /// link, until sent). Returns what to send now. What it refuses or
  /// replaces is told in take_outcomes().
  std::optional<msg::client_message> submit(msg::client_message m, bool ready,
                                            int64_t now_ms = 0);

  bool v2() const { return v2_; }

  /// The NACKs the link decided itself since the last call (an invalid app
  /// id, `superseded`, `outbox_full`), for the app as the server's are.
  std::vector<msg::server_message> take_outcomes() { return std::exchange(outcomes_, {}); }

  /// A NACK that says "not now": the message stays and is sent again.
  static bool retry_later(msg::nack_code code);

  /// When each message acknowledged since the last call was sent (epoch ms),
  /// for round-trip times.
  std::vector<int64_t> take_acked_sent_at() { return std::exchange(acked_sent_at_, {}); }
  const stream_status& status() const { return status_; }
  saved_outbox outbox() const;

private:
  struct pending {
    msg::client_message m;
    bool sent = false;   // on some link: it may have reached the server
    int64_t sent_at = 0; // epoch ms
    bool out = false;    // sent on this link, unanswered: in the window
  };
  size_t out_count() const;
  /// Marks `p` sent on this link; the frame to send.
  msg::client_message send(pending& p, int64_t now_ms);

  void refuse(std::optional<std::string> id, msg::nack_code code, std::string why,
              int64_t now_ms);
  bool is_position(const msg::server_message& m) const;

  std::string next_id();

  size_t limit_;
  size_t max_bytes_ = 64 * 1024;
  bool too_large(const msg::client_message& m, int64_t now_ms);
  std::string id_prefix_;
  sim::stream_mutation mutation_;
  uint64_t next_id_ = 0;
  std::vector<int64_t> acked_sent_at_;
  std::vector<msg::server_message> outcomes_;
  bool v2_ = false;
  bool welcomed_ = false; // this link's WELCOME came
  bool awaiting_snapshot_ = false;
  std::string snapshot_epoch_; // of the WELCOME that announced it
  bool known_ = false; // a position to resume from
  std::vector<pending> outbox_;
  size_t window_ = max_window;
  stream_status status_;
};

} // namespace kullsync

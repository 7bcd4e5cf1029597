#include "stream_link.hpp"

#include <algorithm>

#include "kullsync/messages/codec.hpp"
#include "spawn.hpp"

namespace kullsync {

stream_link::stream_link(size_t outbox_limit, std::string id_prefix,
                         sim::stream_mutation mutation)
  : limit_(std::max<size_t>(1, outbox_limit)),
    id_prefix_(std::move(id_prefix)),
    mutation_(mutation) {
}

/// The refusals that say "not now" rather than "never": the server could not
/// store the message (`unavailable`, e.g. its broker is unreachable) or not
/// yet (`rate_limited`). Anything else would be refused again as it is.
bool stream_link::retry_later(msg::nack_code code) {
  return code == msg::nack_code::unavailable || code == msg::nack_code::rate_limited;
}

std::string stream_link::next_id() {
  return id_prefix_ + "-" + std::to_string(++next_id_);
}

void stream_link::restore(const saved_stream& s) {
  status_.epoch = s.epoch;
  status_.seq = s.seq;
  known_ = !s.epoch.empty();
}

void stream_link::restore(const saved_outbox& o) {
  if (!o.id_prefix.empty()) {
    id_prefix_ = o.id_prefix;
    next_id_ = o.next_id;
  }
  for (auto& m : o.messages)
    if (!too_large(m, 0))
      outbox_.push_back({m, true}); // may have reached the server: resend as is
  status_.outbox = outbox_.size();
}

std::string stream_link::resume_query() const {
  if (!known_)
    return {};
  return "epoch=" + query_escape(status_.epoch) + "&since=" + std::to_string(status_.seq);
}

std::vector<msg::client_message> stream_link::opened(bool v2, int64_t now_ms) {
  v2_ = v2;
  welcomed_ = false;
  awaiting_snapshot_ = false;
  for (auto& p : outbox_)
    p.out = false; // what the last link had out is resent in the window
  if (v2)
    return sendable(now_ms);
  std::vector<msg::client_message> out;
  out.reserve(outbox_.size());
  for (auto& p : outbox_) {
    out.push_back(p.m);
    out.back().id.reset(); // v1 knows no ids, and acknowledges nothing
  }
  outbox_.clear();
  status_.outbox = 0;
  return out;
}

size_t stream_link::out_count() const {
  return static_cast<size_t>(
    std::count_if(outbox_.begin(), outbox_.end(), [](const pending& p) { return p.out; }));
}

msg::client_message stream_link::send(pending& p, int64_t now_ms) {
  if (p.sent && mutation_ == sim::stream_mutation::new_ids_on_resend)
    p.m.id = next_id();
  p.sent = true;
  p.out = true;
  p.sent_at = now_ms;
  return p.m;
}

std::vector<msg::client_message> stream_link::sendable(int64_t now_ms) {
  std::vector<msg::client_message> out;
  if (!v2_)
    return out;
  auto room = window_ - std::min(window_, out_count());
  for (auto& p : outbox_) {
    if (room == 0)
      break;
    if (!p.out) {
      out.push_back(send(p, now_ms));
      --room;
    }
  }
  return out;
}

bool stream_link::is_position(const msg::server_message& m) const {
  return v2_ && msg::holds_position(m);
}

stream_link::verdict stream_link::on_message(const msg::server_message& m) {
  if (!v2_)
    return verdict::apply;
  using msg::server_type;
  switch (m.type) {
    case server_type::welcome: {
      if (welcomed_) {
        ++status_.duplicates;
        return verdict::drop; // one per link
      }
      welcomed_ = true;
      auto& w = std::get<msg::welcome>(m.body);
      status_.recovered = w.recovered && known_ && w.epoch == status_.epoch;
      if (status_.recovered) {
        ++status_.resumes;
        status_.replayed = w.seq >= status_.seq ? w.seq - status_.seq : 0;
      } else {
        // The position is the SNAPSHOT's: until it is here, the old one
        // (its epoch with its seq) is what a resume asks for.
        ++status_.resyncs;
        status_.replayed = 0;
        awaiting_snapshot_ = true;
        snapshot_epoch_ = w.epoch;
      }
      return verdict::apply;
    }
    case server_type::snapshot: {
      if (!awaiting_snapshot_) {
        ++status_.duplicates;
        return verdict::drop; // only the one its WELCOME announced
      }
      auto& s = std::get<msg::user_state>(m.body);
      status_.epoch = std::move(snapshot_epoch_);
      status_.seq = s.seq.value_or(0);
      awaiting_snapshot_ = false;
      known_ = true;
      return verdict::apply;
    }
    case server_type::ack:
    case server_type::nack: {
      auto id = m.type == server_type::ack ? std::optional{std::get<msg::ack>(m.body).id}
                                           : std::get<msg::nack>(m.body).id;
      // A NACK without an id (the message's id was not a string) names none.
      auto i = std::find_if(outbox_.begin(), outbox_.end(),
                            [&](const pending& p) { return id && p.m.id == id; });
      // One outcome per message: the answer to a resend whose first answer
      // came (the server repeats its ACK), or a doubled frame, is dropped.
      if (i == outbox_.end()) {
        ++status_.duplicates;
        return verdict::drop;
      }
      if (m.type == server_type::nack && retry_later(std::get<msg::nack>(m.body).code)) {
        // Kept as sent: the ack timeout sends it again, as it does a lost one.
        ++status_.deferred;
        if (std::get<msg::nack>(m.body).code == msg::nack_code::rate_limited)
          window_ = std::max<size_t>(1, window_ / 2);
        return verdict::apply;
      }
      if (m.type == server_type::ack) {
        window_ = std::min(max_window, window_ + 1);
        if (i->sent && i->sent_at != 0)
          acked_sent_at_.push_back(i->sent_at);
      }
      outbox_.erase(i);
      status_.outbox = outbox_.size();
      if (m.type == server_type::nack)
        ++status_.refused;
      return verdict::apply;
    }
    default:
      break;
  }
  if (!is_position(m))
    return verdict::apply;
  if (awaiting_snapshot_) {
    ++status_.gaps; // the SNAPSHOT its WELCOME announced was lost
    return verdict::gap;
  }
  if (*m.seq <= status_.seq && mutation_ != sim::stream_mutation::keep_duplicates) {
    ++status_.duplicates;
    return verdict::drop;
  }
  if (*m.seq > status_.seq + 1 && mutation_ != sim::stream_mutation::ignore_gaps) {
    ++status_.gaps;
    return verdict::gap;
  }
  status_.seq = *m.seq;
  return verdict::apply;
}

void stream_link::refuse(std::optional<std::string> id, msg::nack_code code, std::string why,
                         int64_t now_ms) {
  msg::server_message m;
  m.type = msg::server_type::nack;
  m.type_name = "NACK";
  m.timestamp = now_ms;
  m.body = msg::nack{std::move(id), code, std::move(why)};
  outcomes_.push_back(std::move(m));
}

std::vector<msg::client_message> stream_link::overdue(int64_t before_ms,
                                                      int64_t now_ms) {
  std::vector<msg::client_message> out;
  if (!v2_)
    return out;
  // Within the window too: what a flood's NACKs deferred goes again no
  // faster than the window (halved by each of them) lets it.
  for (auto& p : outbox_)
    if (p.out && p.sent_at <= before_ms && out.size() < window_) {
      p.sent_at = now_ms;
      out.push_back(p.m);
    }
  return out;
}

bool stream_link::too_large(const msg::client_message& m, int64_t now_ms) {
  auto bytes = msg::encode(m).size();
  if (bytes <= max_bytes_)
    return false;
  refuse(m.id, msg::nack_code::too_large,
         "its frame has " + std::to_string(bytes) + " bytes, more than the "
           + std::to_string(max_bytes_) + " a server takes",
         now_ms);
  return true;
}

std::optional<msg::client_message> stream_link::submit(msg::client_message m,
                                                       bool ready, int64_t now_ms) {
  if (ready && !v2_) {
    m.id.reset(); // v1: sent as the deployed apps send it, acknowledged by none
    if (too_large(m, now_ms))
      return std::nullopt;
    return m;
  }
  if (m.id && !msg::valid_message_id(*m.id)) {
    // Sent, it would be refused (or, not UTF-8, close the link) again and again.
    refuse(std::string{msg::utf8_prefix(*m.id, msg::max_message_id)}, msg::nack_code::invalid,
           "an id has 1 to 64 characters of printable UTF-8", now_ms);
    return std::nullopt;
  }
  if (m.id && std::any_of(outbox_.begin(), outbox_.end(),
                          [&](const pending& p) { return p.m.id == m.id; })) {
    // The server would answer it with the waiting one's ACK.
    refuse(m.id, msg::nack_code::invalid, "an id already waiting for its ACK", now_ms);
    return std::nullopt;
  }
  if (!m.id)
    m.id = next_id();
  if (too_large(m, now_ms))
    return std::nullopt;
  {
    // Of what was not sent yet (offline, or waiting for room in the
    // window), the latest per shoot is enough.
    auto& shoot = std::get<msg::shoot_progress>(m.body).shoot_id;
    auto i = std::find_if(outbox_.begin(), outbox_.end(), [&](const pending& p) {
      return !p.sent && std::get<msg::shoot_progress>(p.m.body).shoot_id == shoot;
    });
    if (i != outbox_.end()) {
      refuse(i->m.id, msg::nack_code::superseded,
             "replaced by a later update of its shoot (" + *m.id + ") before it was sent",
             now_ms);
      outbox_.erase(i);
    }
  }
  if (outbox_.size() >= limit_) {
    // What was taken stays until acknowledged: the newcomer is refused.
    ++status_.outbox_dropped;
    refuse(m.id, msg::nack_code::outbox_full,
           "the outbox holds " + std::to_string(limit_) + " unacknowledged messages", now_ms);
    return std::nullopt;
  }
  outbox_.push_back({m});
  status_.outbox = outbox_.size();
  if (ready && out_count() < window_)
    return send(outbox_.back(), now_ms);
  return std::nullopt; // sent when a link opens, or when the window has room
}

saved_outbox stream_link::outbox() const {
  saved_outbox o;
  o.id_prefix = id_prefix_;
  o.next_id = next_id_;
  for (auto& p : outbox_)
    o.messages.push_back(p.m);
  return o;
}

} // namespace kullsync

// The connection's inbound side: what the current link delivered, decoded,
// judged by the v2 stream's rules and passed on to the coordinator.
#include "connection_state.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/close_code.hpp"
#include "kullsync/transports/subprotocol.hpp"

namespace kullsync::conn {

namespace {

/// Decodes one frame into `out`; a bad frame is counted and skipped.
void decode_frame(conn_ptr self, const std::string& text, inbound_batch& out) {
  auto& st = self->state;
  // Decoded in place: a message is a few hundred bytes of strings.
  auto& m = out.emplace_back();
  if (auto err = msg::decode_server_into(text, m, st.cfg.connection.limits)) {
    ++st.telemetry.decode_errors;
    st.telemetry_changed = true;
    self->send(st.coord, bad_frame_atom::value);
    // One that has a position is passed on as a message of no known type:
    // ignored, but its position taken (else it would be a gap after it, and
    // each resume would replay the same frame into the same gap).
    auto seq = msg::server_frame_seq(text, st.cfg.connection.limits);
    if (!seq) {
      out.pop_back();
      st.log->debug("{}: bad frame ignored: {}", st.who, err->detail);
      return;
    }
    st.log->warn("{}: the message at seq {} is ignored, unreadable: {}", st.who, *seq, err->detail);
    m = msg::server_message{};
    m.type_name = "(unreadable)";
    m.seq = seq;
    m.body = msg::unknown_data{};
  }
}

void heard(conn_ptr self) {
  auto& st = self->state;
  if (st.awaiting_pong) {
    st.awaiting_pong = false;
    self->send(st.keepalive, heard_atom::value, st.status.link);
  }
}

/// On a link that echoed kull.v2: whether `m` lets the link go on. WELCOME
/// makes it v2. A frame only a v2 server sends (a seq, a control message)
/// without a WELCOME before it means the link lost that WELCOME: false, it
/// resumes. Any other first frame makes it v1: a v2 server's first frame is
/// WELCOME, and some v1 servers echo any subprotocol (Node ws does by
/// default), then send the device its own DEVICE_CONNECTED first.
bool opens_v2_link(conn_ptr self, const msg::server_message& m) {
  auto& st = self->state;
  using msg::server_type;
  bool v2_only = m.seq || m.type == server_type::snapshot || m.type == server_type::ack
                 || m.type == server_type::nack || m.type == server_type::refreshed;
  if (v2_only)
    return false;
  if (m.type == server_type::welcome) {
    if (st.phase != link_phase::awaiting_welcome)
      return false; // after the link was judged v1: start over
    ready(self, true);
    note_expiry(self, std::get<msg::welcome>(m.body).expires_at, m.timestamp);
    return true;
  }
  if (st.phase == link_phase::awaiting_welcome) {
    st.log->warn("{}: link {}: the server echoed {} but speaks v1", st.who, st.status.link,
                 v2_subprotocol);
    ready(self, false);
  }
  return true;
}

/// Keeps what the stream applies, in order; false at a gap (the rest of
/// the link is useless: it resumes).
/// What admitting a batch's messages found, acted on once for the batch.
struct admitted {
  inbound_batch out;
  bool outbox_changed = false; // ACKs or NACKs: the outbox is saved once
};

bool admit(conn_ptr self, msg::server_message& m, admitted& a) {
  auto& st = self->state;
  if (st.echoed_v2 && !st.stream.v2() && !opens_v2_link(self, m))
    return false;
  if (m.type == msg::server_type::batch && st.stream.v2()) {
    auto& parts = std::get<msg::batch>(m.body).messages;
    for (auto& inner : parts)
      if (!admit(self, inner, a))
        return false;
    return true;
  }
  switch (st.stream.on_message(m)) {
    case stream_link::verdict::apply:
      if (m.type == msg::server_type::ack || m.type == msg::server_type::nack)
        a.outbox_changed = true;
      if (m.type == msg::server_type::refreshed)
        note_expiry(self, std::get<msg::refreshed>(m.body).expires_at, m.timestamp);
      if (m.type == msg::server_type::nack) {
        auto& n = std::get<msg::nack>(m.body);
        if (stream_link::retry_later(n.code)) {
          // Not an outcome: the engine sends it again, and the app hears
          // only of the ACK or the final NACK.
          st.log->info("{}: message {} not taken now: {} ({}); sent again after the ack timeout", st.who,
                       n.id.value_or("(no id)"), to_string(n.code), n.error);
          return true;
        }
        st.log->warn("{}: message {} refused: {} ({})", st.who, n.id.value_or("(no id)"),
                     to_string(n.code), n.error);
      }
      a.out.push_back(std::move(m));
      return true;
    case stream_link::verdict::drop:
      return true;
    case stream_link::verdict::gap:
      break;
  }
  return false;
}

} // namespace

void on_frames(conn_ptr self, const frame_batch& frames) {
  auto& st = self->state;
  heard(self);
  inbound_batch decoded;
  decoded.reserve(frames.size());
  for (auto& text : frames)
    decode_frame(self, text, decoded);
  admitted a;
  a.out.reserve(decoded.size());
  bool gap = false;
  for (auto& m : decoded)
    if (!admit(self, m, a)) {
      gap = true;
      break;
    }
  if (!a.out.empty())
    self->send(st.coord, inbound_atom::value, std::move(a.out));
  if (st.v1_unconfirmed && st.phase == link_phase::ready_v1) {
    st.v1_unconfirmed = false; // the server took the token: the outbox goes
    flush_outbox(self, false);
  }
  if (a.outbox_changed) {
    save_outbox(self);
    auto now = now_ms(self);
    for (auto sent : st.stream.take_acked_sent_at())
      st.telemetry.ack_rtt.observe(now - sent);
    st.telemetry_changed = true;
  }
  report_stream(self);
  if (gap) {
    close_link(self, close_code::normal, "resuming");
    return resume_now(self, "a gap in the stream after seq "
                              + std::to_string(st.stream.status().seq));
  }
  if (a.outbox_changed && takes_stream_messages(self)) {
    // Answers made room in the window: what waited goes now.
    for (auto& m : st.stream.sendable(now_ms(self)))
      send_frame(self, m);
    arm_resend(self);
  }
  if (auto n = st.credit.handled(frames.size()))
    self->send(st.transport, credit_atom::value, st.status.link, n);
}

} // namespace kullsync::conn

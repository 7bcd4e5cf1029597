#include "kullsync/server/stream.hpp"

#include <charconv>

namespace kullsync::server {

std::string client_dedup_key(std::string_view device, std::string_view id) {
  // The device's length first: no (device, id) pair spells another's, and
  // the 'c' keeps every one apart from the backend's keys.
  std::string k = "c";
  k += std::to_string(device.size());
  k += ':';
  k += device;
  k += id;
  return k;
}

std::string backend_dedup_key(std::string_view type, std::string_view idempotency_key) {
  // The type's name has no ':': no (type, key) pair spells another's.
  std::string k = "h";
  k += type;
  k += ':';
  k += idempotency_key;
  return k;
}

std::string with_seq(std::string v1_frame, uint64_t seq) {
  // `seq` is the envelope's last field in both encoders (codec.hpp).
  if (v1_frame.size() < 2 || v1_frame.back() != '}')
    return v1_frame; // not an envelope: publishes refuse such frames
  v1_frame.pop_back(); // the envelope's '}'
  v1_frame += ",\"seq\":";
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), seq);
  v1_frame.append(buf, r.ptr);
  v1_frame += '}';
  return v1_frame;
}

std::string without_seq(std::string_view v2_frame, uint64_t seq) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), seq);
  std::string tail = ",\"seq\":";
  tail.append(buf, r.ptr);
  tail += '}';
  if (v2_frame.size() < tail.size()
      || v2_frame.substr(v2_frame.size() - tail.size()) != tail)
    return std::string{v2_frame};
  std::string out{v2_frame.substr(0, v2_frame.size() - tail.size())};
  out += '}';
  return out;
}

shared_frame v1_frame(const stream_message& m) {
  if (m.seq == 0)
    return m.frame;
  return make_shared_frame(without_seq(m.frame.str(), m.seq));
}

message_ptr make_message(key_ptr key, uint64_t seq, std::string origin, std::string v1_text,
                         state_change state, std::optional<presence_entry> presence,
                         bool present, bool control) {
  auto m = std::make_shared<stream_message>();
  m->key = std::move(key);
  m->seq = seq;
  m->origin = std::move(origin);
  m->frame = make_shared_frame(seq != 0 ? with_seq(std::move(v1_text), seq)
                                        : std::move(v1_text));
  m->state = std::move(state);
  m->presence = std::move(presence);
  m->present = present;
  m->control = control;
  return m;
}

} // namespace kullsync::server

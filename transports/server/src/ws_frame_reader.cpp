#include "ws_frame_reader.hpp"

#include <cstring>

#include <boost/beast/websocket/detail/utf8_checker.hpp>

#include "kullsync/transports/close_code.hpp"
#include "kullsync/transports/ws_frame.hpp"

namespace kullsync::ws {

namespace {

using close_code::no_status;
using close_code::protocol_error;
using close_code::too_big;
constexpr uint16_t bad_payload = close_code::invalid_payload;

void unmask(char* p, size_t n, const unsigned char (&key)[4]) {
  uint32_t k32;
  std::memcpy(&k32, key, 4);
  uint64_t k64 = (uint64_t{k32} << 32) | k32;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    w ^= k64;
    std::memcpy(p + i, &w, 8);
  }
  for (; i < n; ++i)
    p[i] = static_cast<char>(p[i] ^ key[i % 4]);
}

} // namespace

bool valid_utf8(const char* p, size_t n) {
  return boost::beast::websocket::detail::check_utf8(p, n);
}

namespace {

// Why a client's frame header breaks the protocol (1002), or null.
const char* refusal(const frame_header& h) {
  if (h.rsv != 0) // no extension was negotiated
    return "reserved bits set";
  if (!h.masked)
    return "unmasked client frame";
  if (h.len >> 63)
    return "length out of range";
  if (!h.minimal)
    return "length not minimally encoded";
  if ((h.opcode & 0x8) != 0 && (!h.fin || h.len > 125))
    return "fragmented or long control frame";
  return nullptr;
}

} // namespace

size_t frame_reader::parse(char* data, size_t n, frame_sink& sink,
                           size_t max_messages) {
  size_t used = 0;
  messages_ = 0;
  while (!done_ && messages_ < max_messages) {
    auto* p = reinterpret_cast<unsigned char*>(data + used);
    size_t avail = n - used;
    frame_header h;
    if (!read_frame_header(p, avail, h))
      break;
    if (auto* why = refusal(h)) {
      fail(sink, protocol_error, why);
      break;
    }
    bool control = (h.opcode & 0x8) != 0;
    if (!control && h.len > max_message_ - (in_message_ ? fragments_.size() : 0)) {
      fail(sink, too_big, "frame too big");
      break;
    }
    if (avail < h.size || avail - h.size < h.len)
      break;
    unsigned char key[4];
    std::memcpy(key, p + h.size - 4, 4);
    char* payload = data + used + h.size;
    auto len = static_cast<size_t>(h.len);
    unmask(payload, len, key);
    used += h.size + len;
    if (!on_frame(sink, h.fin, h.opcode, payload, len))
      break;
  }
  return used;
}

bool frame_reader::on_frame(frame_sink& sink, bool fin, uint8_t opcode,
                            char* payload, size_t len) {
  if ((opcode & 0x8) != 0)
    return on_control(sink, opcode, payload, len);
  if (opcode == opcode::continuation) {
    if (!in_message_)
      return fail(sink, protocol_error, "continuation without a message");
  } else if (opcode == opcode::text || opcode == opcode::binary) {
    if (in_message_)
      return fail(sink, protocol_error, "new message inside a fragmented one");
    text_ = opcode == opcode::text;
    if (fin) { // the common case: one frame, one message, no copy to join
      if (text_ && !valid_utf8(payload, len))
        return fail(sink, bad_payload, "invalid UTF-8");
      ++messages_;
      sink.on_message(std::string{payload, len});
      return true;
    }
    in_message_ = true;
  } else {
    return fail(sink, protocol_error, "unknown opcode");
  }
  fragments_.append(payload, len);
  if (!fin)
    return true;
  in_message_ = false;
  std::string text;
  text.swap(fragments_);
  if (text_ && !valid_utf8(text.data(), text.size()))
    return fail(sink, bad_payload, "invalid UTF-8");
  ++messages_;
  sink.on_message(std::move(text));
  return true;
}

bool frame_reader::on_control(frame_sink& sink, uint8_t opcode, char* payload,
                              size_t len) {
  switch (opcode) {
    case opcode::ping:
      sink.on_ping({payload, len});
      return true;
    case opcode::pong:
      sink.on_pong();
      return true;
    case opcode::close: {
      if (len == 0) {
        done_ = true;
        sink.on_close(no_status, {});
        return false;
      }
      if (len == 1)
        return fail(sink, protocol_error, "close frame of one byte");
      auto* b = reinterpret_cast<unsigned char*>(payload);
      uint16_t code = static_cast<uint16_t>((b[0] << 8) | b[1]);
      if (!close_code::valid_on_wire(code))
        return fail(sink, protocol_error, "invalid close code");
      if (!valid_utf8(payload + 2, len - 2))
        return fail(sink, bad_payload, "invalid UTF-8 in close reason");
      done_ = true;
      sink.on_close(code, {payload + 2, len - 2});
      return false;
    }
    default:
      return fail(sink, protocol_error, "unknown opcode");
  }
}

bool frame_reader::fail(frame_sink& sink, uint16_t code, const char* reason) {
  done_ = true;
  fragments_.clear();
  fragments_.shrink_to_fit();
  sink.on_violation(code, reason);
  return false;
}

} // namespace kullsync::ws

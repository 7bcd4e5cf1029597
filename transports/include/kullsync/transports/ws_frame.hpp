#pragma once

/// The header of a WebSocket frame (RFC 6455 5.2), written and read, for
/// code that frames messages itself: the server's output buffer and frame
/// reader, and the load generator. No dependencies.

#include <cstddef>
#include <cstdint>

namespace kullsync::ws {

/// Frame opcodes (RFC 6455 5.2).
namespace opcode {
constexpr uint8_t continuation = 0x0;
constexpr uint8_t text = 0x1;
constexpr uint8_t binary = 0x2;
constexpr uint8_t close = 0x8;
constexpr uint8_t ping = 0x9;
constexpr uint8_t pong = 0xA;
} // namespace opcode

/// The longest frame header, without a mask key.
constexpr size_t max_frame_header = 10;

/// Writes the header of an unfragmented frame (FIN set) with `opcode` and a
/// payload of `n` bytes into `head` and returns its length (2, 4 or 10).
/// `masked` sets the mask bit of a client's frame, whose 4-byte key follows.
inline size_t write_frame_header(unsigned char (&head)[max_frame_header],
                                 uint8_t opcode, uint64_t n, bool masked) {
  const unsigned char mask = masked ? 0x80 : 0x00;
  head[0] = static_cast<unsigned char>(0x80 | opcode);
  if (n < 126) {
    head[1] = static_cast<unsigned char>(mask | n);
    return 2;
  }
  if (n <= 0xffff) {
    head[1] = mask | 126;
    head[2] = static_cast<unsigned char>(n >> 8);
    head[3] = static_cast<unsigned char>(n);
    return 4;
  }
  head[1] = mask | 127;
  for (int i = 0; i < 8; ++i)
    head[2 + i] = static_cast<unsigned char>(n >> (56 - 8 * i));
  return 10;
}

/// A frame's header as it came: what it says, not whether it is allowed
/// (that depends on who reads it).
struct frame_header {
  bool fin = false;
  uint8_t rsv = 0; // the three reserved bits
  uint8_t opcode = 0;
  bool masked = false;
  uint64_t len = 0;    // payload bytes
  size_t size = 0;     // header bytes, mask key included
  bool minimal = true; // the length took its shortest encoding
};

/// Reads the header at `p`, of which `avail` bytes have arrived; false if
/// its length has not all arrived yet. The mask key, if any, is the last
/// 4 of `size` bytes.
inline bool read_frame_header(const unsigned char* p, size_t avail, frame_header& h) {
  if (avail < 2)
    return false;
  h.fin = (p[0] & 0x80) != 0;
  h.rsv = (p[0] >> 4) & 0x7;
  h.opcode = p[0] & 0x0F;
  h.masked = (p[1] & 0x80) != 0;
  h.len = p[1] & 0x7F;
  size_t ext = h.len == 126 ? 2 : h.len == 127 ? 8 : 0;
  if (avail < 2 + ext)
    return false;
  if (ext > 0) {
    h.len = 0;
    for (size_t i = 0; i < ext; ++i)
      h.len = (h.len << 8) | p[2 + i];
    h.minimal = h.len >= (ext == 2 ? 126u : 0x10000u);
  }
  h.size = 2 + ext + (h.masked ? 4 : 0);
  return true;
}

} // namespace kullsync::ws

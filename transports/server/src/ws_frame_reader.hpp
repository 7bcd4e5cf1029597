#pragma once

// Private to kullsync_transports.
//
// The server's reading half of RFC 6455: frames from a client, parsed in
// place from whatever bytes one read returned. The server keeps no Beast
// stream per socket (about 2.7 KiB each); an idle socket holds only this
// reader's few words, and a read of many frames is parsed in one pass
// instead of one completion handler per message. Nothing here does I/O.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kullsync::ws {

/// What the reader found, in the order the client sent it.
class frame_sink {
public:
  virtual ~frame_sink() = default;
  /// A complete text or binary message (fragments joined).
  virtual void on_message(std::string text) = 0;
  virtual void on_ping(std::string_view payload) = 0;
  virtual void on_pong() = 0;
  /// The client's close frame: 1005 when it carried no code.
  virtual void on_close(uint16_t code, std::string_view reason) = 0;
  /// The client broke the protocol; the connection fails with `code`
  /// (1002 protocol error, 1007 invalid UTF-8, 1009 too big).
  virtual void on_violation(uint16_t code, const char* reason) = 0;
};

/// Parses a client's frames. After a close frame or a violation it reports
/// nothing more.
class frame_reader {
public:
  explicit frame_reader(size_t max_message) : max_message_(max_message) {
  }

  /// Reports every complete frame in `[data, data + n)` to `sink`, unmasking
  /// payloads in place, and returns how many bytes it used: the rest is the
  /// start of a frame, to be passed again with the bytes that follow it.
  /// Stops after `max_messages` messages, leaving the rest unused.
  size_t parse(char* data, size_t n, frame_sink& sink,
               size_t max_messages = SIZE_MAX);

  /// The messages the last parse() reported.
  size_t messages() const { return messages_; }

  /// True once a close frame or a violation ended the stream.
  bool done() const { return done_; }

  /// True while a fragmented message is incomplete; `held()` is the memory
  /// its fragments take.
  bool mid_message() const { return in_message_; }
  size_t held() const { return fragments_.empty() ? 0 : fragments_.capacity(); }

private:
  bool fail(frame_sink& sink, uint16_t code, const char* reason);
  bool on_frame(frame_sink& sink, bool fin, uint8_t opcode, char* payload,
                size_t len);
  bool on_control(frame_sink& sink, uint8_t opcode, char* payload, size_t len);

  size_t max_message_;
  std::string fragments_; // a fragmented message so far
  bool in_message_ = false;
  bool text_ = false; // the fragmented message is text (checked as UTF-8)
  bool done_ = false;
  size_t messages_ = 0;
};

/// True if `[p, p + n)` is valid UTF-8 (RFC 3629).
bool valid_utf8(const char* p, size_t n);

} // namespace kullsync::ws

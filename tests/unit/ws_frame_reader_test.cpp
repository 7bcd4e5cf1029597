// The server's RFC 6455 frame reader on its own: masked frames of every
// length encoding are unmasked intact, a stream cut at any byte yields the
// same messages, fragments join, and the close frame ends the stream. The
// protocol violations and their close codes are checked end to end, against
// the server binary, by tests/interop/ws_conformance.py.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kullsync/transports/ws_frame.hpp"
#include "ws_frame_reader.hpp"

using namespace kullsync;

namespace {

struct recorded : ws::frame_sink {
  std::vector<std::string> events;
  void on_message(std::string text) override { events.push_back("msg:" + text); }
  void on_ping(std::string_view p) override { events.push_back("ping:" + std::string{p}); }
  void on_pong() override { events.push_back("pong"); }
  void on_close(uint16_t code, std::string_view r) override {
    events.push_back("close:" + std::to_string(code) + ":" + std::string{r});
  }
  void on_violation(uint16_t code, const char* r) override {
    events.push_back("violation:" + std::to_string(code) + ":" + r);
  }
};

/// A client's frame: masked with a fixed key, FIN as given.
std::string client_frame(uint8_t opcode, const std::string& payload, bool fin = true) {
  unsigned char head[ws::max_frame_header];
  auto n = ws::write_frame_header(head, opcode, payload.size(), true);
  if (!fin)
    head[0] &= 0x7F;
  std::string out(reinterpret_cast<const char*>(head), n);
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  out.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return out;
}

/// Feeds `stream` in pieces of `step` bytes, keeping what the reader left.
std::vector<std::string> read_in_pieces(const std::string& stream, size_t step) {
  recorded sink;
  ws::frame_reader reader{1 << 20};
  std::string held;
  for (size_t at = 0; at < stream.size() && !reader.done(); at += step) {
    held += stream.substr(at, step);
    held.erase(0, reader.parse(held.data(), held.size(), sink));
  }
  return sink.events;
}

} // namespace

TEST(ws_frame_reader, unmasks_payloads_of_every_length_encoding) {
  for (size_t len : {0, 1, 7, 8, 9, 125, 126, 127, 65535, 65536, 70001}) {
    std::string payload(len, '\0');
    for (size_t i = 0; i < len; ++i)
      payload[i] = static_cast<char>('a' + i % 26);
    auto events = read_in_pieces(client_frame(ws::opcode::text, payload), 1 << 20);
    ASSERT_EQ(events.size(), 1u) << len;
    EXPECT_EQ(events[0], "msg:" + payload) << len;
  }
}

TEST(ws_frame_reader, a_stream_cut_anywhere_yields_the_same_events) {
  std::string stream = client_frame(ws::opcode::text, "first")
                       + client_frame(ws::opcode::text, "sec", false)
                       + client_frame(ws::opcode::ping, "p")
                       + client_frame(ws::opcode::continuation, "ond")
                       + client_frame(ws::opcode::pong, "")
                       + client_frame(ws::opcode::binary, std::string(300, 'b'))
                       + client_frame(ws::opcode::close, std::string{"\x03\xe8", 2} + "bye")
                       + client_frame(ws::opcode::text, "after the close");
  std::vector<std::string> want = {"msg:first", "ping:p", "msg:second", "pong",
                                   "msg:" + std::string(300, 'b'), "close:1000:bye"};
  for (size_t step = 1; step <= stream.size(); ++step)
    ASSERT_EQ(read_in_pieces(stream, step), want) << "pieces of " << step;
}

TEST(ws_frame_reader, refuses_what_the_protocol_forbids) {
  auto unmasked = client_frame(ws::opcode::text, "x");
  unmasked[1] = static_cast<char>(unmasked[1] & 0x7F);
  EXPECT_EQ(read_in_pieces(unmasked, 64),
            std::vector<std::string>{"violation:1002:unmasked client frame"});
  EXPECT_EQ(read_in_pieces(client_frame(ws::opcode::text, "\xc3\x28"), 64),
            std::vector<std::string>{"violation:1007:invalid UTF-8"});
  ws::frame_reader small{10};
  recorded sink;
  auto big = client_frame(ws::opcode::text, std::string(11, 'x'));
  // Refused from the header alone: the payload need not arrive.
  EXPECT_EQ(small.parse(big.data(), 6, sink), 0u);
  EXPECT_EQ(sink.events, std::vector<std::string>{"violation:1009:frame too big"});
  EXPECT_TRUE(small.done());
}

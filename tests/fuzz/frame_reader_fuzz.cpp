// libFuzzer target: the server's RFC 6455 frame reader, stateful. The input
// is parsed whole, then again split at points the input itself chooses (as
// reads of a socket would cut it, with the unused tail carried over as the
// server does); both must report the same events, and nothing may crash or
// leak.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ws_frame_reader.hpp"

using namespace kullsync;

namespace {

struct recorder final : ws::frame_sink {
  std::vector<std::string> events;
  void on_message(std::string text) override { events.push_back("m:" + text); }
  void on_ping(std::string_view p) override { events.push_back("p:" + std::string{p}); }
  void on_pong() override { events.push_back("o"); }
  void on_close(uint16_t code, std::string_view r) override {
    events.push_back("c:" + std::to_string(code) + ":" + std::string{r});
  }
  void on_violation(uint16_t code, const char* r) override {
    events.push_back("v:" + std::to_string(code) + ":" + r);
  }
};

/// Feeds `data` in pieces as the server does: a parse uses what it can, the
/// rest waits for the next read.
std::vector<std::string> run(const std::string& data, const std::vector<size_t>& cuts,
                             size_t max_messages) {
  ws::frame_reader reader{4096};
  recorder rec;
  std::string pending;
  size_t at = 0;
  auto feed = [&](size_t n) {
    pending.append(data, at, n);
    at += n;
    for (;;) {
      size_t used = reader.parse(pending.data(), pending.size(), rec, max_messages);
      pending.erase(0, reader.done() ? pending.size() : used);
      // Out of "credit": the rest is parsed again with the next piece, or now
      // if it held complete messages.
      if (used == 0 || pending.empty() || reader.done())
        break;
    }
  };
  for (auto c : cuts)
    if (c > at && c <= data.size())
      feed(c - at);
  feed(data.size() - at);
  return rec.events;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  // First byte: how many cut points follow (each one byte, scaled).
  size_t ncuts = data[0] % 8;
  if (size < 1 + ncuts)
    return 0;
  std::string frames(reinterpret_cast<const char*>(data + 1 + ncuts), size - 1 - ncuts);
  std::vector<size_t> cuts;
  for (size_t i = 0; i < ncuts; ++i)
    cuts.push_back(frames.empty() ? 0 : data[1 + i] * frames.size() / 256);
  std::sort(cuts.begin(), cuts.end());
  auto whole = run(frames, {}, SIZE_MAX);
  auto pieces = run(frames, cuts, SIZE_MAX);
  if (whole != pieces)
    __builtin_trap();
  // With a credit of one message per parse, the events are the same too.
  if (run(frames, cuts, 1) != whole)
    __builtin_trap();
  return 0;
}

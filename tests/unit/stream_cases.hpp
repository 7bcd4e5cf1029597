#pragma once

// The rules of a user's stream as one table of cases: every step says what
// it asks and what it must get. stream_cases_test.cpp runs the table against
// both implementations, the C++ stream core (a node alone, the simulation)
// and the Lua scripts on a real redis-server (a cluster), so the two cannot
// drift apart. A rule added to one is added here, and then to the other.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kullsync/server/stream.hpp"

namespace kullsync::test::cases {

using server::presence_entry;
using server::state_update;

struct step {
  enum kind { publish, read, head, failover } op = publish;
  int64_t now = 1'000'000;
  std::string user = "u";
  // publish
  std::string frame = R"({"type":"CREDIT_UPDATE","data":{},"timestamp":1})";
  bool numbered = true;
  std::string dedup;
  state_update state;
  std::optional<presence_entry> presence;
  bool present = false;
  // read: (since, upto]; `other_epoch` asks with an epoch that is not the
  // stream's
  uint64_t since = 0, upto = UINT64_MAX;
  bool other_epoch = false;

  // What must come back.
  uint64_t seq = 0;          // publish: the receipt's position
  bool duplicate = false;    // publish
  bool new_epoch = false;    // publish, head: the epoch differs from the last seen
  std::string changed;       // publish: the state field it changed ("" none)
  int64_t until = 0;         // publish: the change's end of linger
  bool complete = true;      // read
  std::vector<uint64_t> seqs; // read: the positions, in order
  uint64_t top = 0;          // head
  std::optional<uint64_t> first; // head: the oldest position held, if checked
  std::vector<std::string> fields;  // head: the state's fields (by name)
  std::vector<std::string> devices; // head: "node|device" (by node, device)
};

struct limits {
  size_t history_size = 100;
  size_t max_shoots = 0;
  int64_t idle_ms = 0;
  int64_t dedup_ttl_ms = 600'000;
  // Redis's own clock decides (a key's expiry): the scripts' runner lets
  // each step's `now` pass in real time first (keep such cases short).
  bool redis_clock = false;
};

struct stream_case {
  const char* name;
  limits lim;
  std::vector<step> steps;
};

// -- helpers for the table -----------------------------------------------------

inline step credit(uint64_t seq, int64_t now = 1'000'000) {
  step s;
  s.now = now;
  s.state.field = "credits";
  s.seq = seq;
  s.changed = "credits";
  return s;
}

/// A shoot update of shoot `id` (processed count `rank`, or a finished
/// one), at message time `at`.
inline step shoot(const std::string& id, int64_t rank, uint64_t seq, bool changes,
                  int64_t now = 1'000'000, int64_t at = 0) {
  step s;
  s.now = now;
  s.frame = R"({"type":"SHOOT_PROGRESS","data":{"shootId":")" + id + R"("},"timestamp":1})";
  s.state.field = "shoot:" + id;
  s.state.rank = rank;
  s.state.at = at;
  s.seq = seq;
  s.changed = changes ? s.state.field : "";
  return s;
}

inline step finished(const std::string& id, uint64_t seq, int64_t now, int64_t linger,
                     int64_t at = 0) {
  auto s = shoot(id, -1, seq, true, now, at);
  s.state.terminal = true;
  s.state.linger_ms = linger;
  s.until = linger > 0 ? now + linger : 0;
  return s;
}

inline step with_key(step s, std::string key, bool duplicate = false) {
  s.dedup = std::move(key);
  s.duplicate = duplicate;
  if (duplicate)
    s.changed.clear();
  return s;
}

inline step read_of(uint64_t since, uint64_t upto, std::vector<uint64_t> seqs,
                    bool complete = true, int64_t now = 1'000'000) {
  step s;
  s.op = step::read;
  s.since = since;
  s.upto = upto;
  s.seqs = std::move(seqs);
  s.complete = complete;
  s.now = now;
  return s;
}

inline step head_of(uint64_t top, std::vector<std::string> fields,
                    std::vector<std::string> devices = {}, int64_t now = 1'000'000) {
  step s;
  s.op = step::head;
  s.top = top;
  s.fields = std::move(fields);
  s.devices = std::move(devices);
  s.now = now;
  return s;
}

inline step held_from(uint64_t first, step s) {
  s.first = first;
  return s;
}

inline step presence(const std::string& node, const std::string& device, bool on) {
  step s;
  s.numbered = false;
  s.frame = R"({"type":"DEVICE_CONNECTED","data":{},"timestamp":1})";
  s.presence = presence_entry{node, device, 77, device == "ipad" ? 2 : 1};
  s.present = on;
  return s;
}

inline step failover() {
  step s;
  s.op = step::failover;
  return s;
}

// -- the table -------------------------------------------------------------------

inline std::vector<stream_case> all() {
  std::vector<stream_case> out;
  out.push_back({"one numbering per user, from 1", {},
                 {held_from(0, head_of(0, {})), credit(1), credit(2), credit(3),
                  held_from(1, head_of(3, {"credits"})),
                  read_of(0, UINT64_MAX, {1, 2, 3}), read_of(1, 2, {2}),
                  read_of(3, UINT64_MAX, {}), read_of(4, UINT64_MAX, {}, false)}});
  {
    // Another user has a numbering of its own.
    auto other = credit(1);
    other.user = "v";
    out.push_back({"users are apart", {}, {credit(1), other, credit(2)}});
  }
  out.push_back({"a read is all or nothing: evicted by size", {5, 0, 0},
                 {credit(1), credit(2), credit(3), credit(4), credit(5), credit(6), credit(7),
                  held_from(3, head_of(7, {"credits"})),
                  read_of(0, UINT64_MAX, {}, false), read_of(1, UINT64_MAX, {}, false),
                  read_of(2, UINT64_MAX, {3, 4, 5, 6, 7}), read_of(2, 4, {3, 4})}});
  {
    auto stale = read_of(0, UINT64_MAX, {}, false);
    stale.other_epoch = true;
    out.push_back({"a read of another epoch is refused", {}, {credit(1), stale}});
  }
  out.push_back(
    {"dedup: a key is forgotten once its window passed, and publishes again",
     // Wide margins: on Redis these are real seconds on a busy machine.
     {100, 0, 0, 2000, true},
     {with_key(credit(1, 1'000'000), server::client_dedup_key("mac", "1")),
      with_key(credit(1, 1'000'500), server::client_dedup_key("mac", "1"), true),
      with_key(credit(2, 1'003'000), server::client_dedup_key("mac", "1"))}});
  out.push_back(
    {"dedup: a key answers its first position and publishes nothing", {},
     {with_key(credit(1), server::client_dedup_key("mac", "1")),
      with_key(credit(1), server::client_dedup_key("mac", "1"), true),
      // Another device's id "1" is its own.
      with_key(credit(2), server::client_dedup_key("ipad", "1")),
      // The backend's keys are a namespace of their own: a device id that
      // spells one is not it, and the other way round.
      with_key(credit(3), server::client_dedup_key("mac", "http:K7")),
      with_key(credit(4), server::backend_dedup_key("CREDIT_UPDATE", "K7")),
      with_key(credit(4), server::backend_dedup_key("CREDIT_UPDATE", "K7"), true),
      with_key(credit(5), server::client_dedup_key("mac", "hCREDIT_UPDATE:K7")),
      with_key(credit(6), server::client_dedup_key("mac1", "")),
      with_key(credit(7), server::client_dedup_key("mac", "1:")),
      // A key names one trigger's publish: the same key on another is its own.
      with_key(credit(8), server::backend_dedup_key("SHOOT_PROGRESS", "K7")),
      read_of(0, UINT64_MAX, {1, 2, 3, 4, 5, 6, 7, 8})}});
  out.push_back({"a running shoot never goes back", {},
                 {shoot("a", 5, 1, true), shoot("a", 3, 2, false), shoot("a", 5, 3, true),
                  shoot("a", 9, 4, true), head_of(4, {"shoot:a"})}});
  out.push_back(
    {"a finished shoot: replaced by a newer run only, gone after its linger", {},
     {shoot("a", 5, 1, true, 1'000'000, 100), finished("a", 2, 1'000'000, 5000, 200),
      // Older than the end (by message time): stale.
      shoot("a", 9, 3, false, 1'001'000, 150),
      // Unknown time (0) counts as not older.
      shoot("a", 1, 4, true, 1'001'000, 0), finished("a", 5, 1'002'000, 5000, 300),
      // Once the linger is over the shoot is as if absent: anything takes it.
      shoot("a", 0, 6, true, 1'007'001, 10), head_of(6, {"shoot:a"}, {}, 1'007'001)}});
  out.push_back({"credits always replace", {},
                 {credit(1), credit(2), head_of(2, {"credits"})}});
  out.push_back(
    {"a new shoot past the cap drops the one updated least recently", {100, 2, 0},
     {credit(1, 1000), shoot("a", 1, 2, true, 1001), shoot("b", 1, 3, true, 1002),
      shoot("a", 2, 4, true, 1003), shoot("c", 1, 5, true, 1004),
      head_of(5, {"credits", "shoot:a", "shoot:c"}, {}, 1004),
      // b comes back and drops a; then b and c have the same time: the
      // name decides (b before c).
      shoot("b", 1, 6, true, 1004), head_of(6, {"credits", "shoot:b", "shoot:c"}, {}, 1004),
      shoot("d", 1, 7, true, 1004),
      head_of(7, {"credits", "shoot:c", "shoot:d"}, {}, 1004)}});
  out.push_back(
    {"shoots idle too long go when another comes; the credits stay", {100, 0, 1000},
     {credit(1, 10'000), shoot("a", 1, 2, true, 10'000), shoot("b", 1, 3, true, 10'500),
      shoot("a", 2, 4, true, 11'000), head_of(4, {"credits", "shoot:a", "shoot:b"}, {}, 11'000),
      shoot("c", 1, 5, true, 11'501),
      head_of(5, {"credits", "shoot:a", "shoot:c"}, {}, 11'501)}});
  // "at most T seconds" (--history-ttl, 600 s here): a message published
  // longer ago than that is not read, and the oldest held moves past it.
  out.push_back({"messages past the history's lifetime are not held", {},
                 {credit(1, 1'000'000), credit(2, 1'300'000), credit(3, 1'500'000),
                  read_of(0, UINT64_MAX, {1, 2, 3}, true, 1'600'000),
                  read_of(0, UINT64_MAX, {}, false, 1'700'000),
                  read_of(1, UINT64_MAX, {2, 3}, true, 1'700'000),
                  held_from(2, head_of(3, {"credits"}, {}, 1'700'000)),
                  read_of(2, UINT64_MAX, {3}, true, 2'000'000),
                  held_from(3, head_of(3, {"credits"}, {}, 2'000'000)),
                  held_from(0, head_of(3, {"credits"}, {}, 2'200'000))}});
  out.push_back(
    {"lingered-out shoots go when another comes", {},
     {finished("a", 1, 1000, 500), shoot("b", 1, 2, true, 1400),
      head_of(2, {"shoot:a", "shoot:b"}, {}, 1400), shoot("c", 1, 3, true, 1500),
      head_of(3, {"shoot:b", "shoot:c"}, {}, 1500)}});
  out.push_back({"presence: per node and device, not numbered", {},
                 {presence("n1", "mac", true), presence("n2", "mac", true),
                  presence("n1", "ipad", true), credit(1), presence("n1", "mac", false),
                  head_of(1, {"credits"}, {"n1|ipad", "n2|mac"})}});
  {
    auto again = with_key(credit(3), server::client_dedup_key("mac", "1"));
    auto h = head_of(2, {"credits"});
    h.new_epoch = true;
    out.push_back({"a failover: a new epoch, positions go on, keys of the old one answer no more",
                   {},
                   {with_key(credit(1), server::client_dedup_key("mac", "1")), credit(2),
                    failover(), h, read_of(0, UINT64_MAX, {}, false), again,
                    read_of(2, UINT64_MAX, {3})}});
  }
  return out;
}

} // namespace kullsync::test::cases

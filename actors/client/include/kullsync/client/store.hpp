#pragma once

/// What a device keeps across restarts of the app (v2): its position in the
/// user's stream together with the state at that position (so that a resume
/// after a restart applies the missed messages onto the state they follow),
/// and the client messages the server has not acknowledged yet (resent with
/// the same ids, so that none is applied twice). The engine loads it once at
/// spawn and saves as it goes; without a store it keeps them in memory only.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kullsync/messages/types.hpp"

namespace kullsync {

struct saved_stream {
  std::string epoch;
  uint64_t seq = 0;
  msg::user_state state; // shoots, credits as of `seq`
};

struct saved_outbox {
  std::vector<msg::client_message> messages; // each with its id
  std::string id_prefix; // ids are id_prefix + "-" + a counter
  uint64_t next_id = 0;
};

/// Implementations must be thread-safe and quick: the engine's actors call
/// them (the coordinator saves the stream at most once a second, the
/// connection the outbox when it changes).
class client_store {
public:
  virtual ~client_store() = default;
  virtual std::optional<saved_stream> load_stream() = 0;
  virtual std::optional<saved_outbox> load_outbox() = 0;
  virtual void save_stream(const saved_stream& x) = 0;
  virtual void save_outbox(const saved_outbox& x) = 0;
};

/// A store in one JSON file (written to a temporary file, then renamed, so a
/// crash leaves the old or the new one). A missing or unreadable file loads
/// as nothing (the engine then starts with a snapshot).
std::shared_ptr<client_store> make_file_store(std::string path);

/// A store in memory (tests, and apps that persist nothing).
class memory_store : public client_store {
public:
  std::optional<saved_stream> load_stream() override;
  std::optional<saved_outbox> load_outbox() override;
  void save_stream(const saved_stream& x) override;
  void save_outbox(const saved_outbox& x) override;

private:
  std::mutex mtx_;
  std::optional<saved_stream> stream_;
  std::optional<saved_outbox> outbox_;
};

} // namespace kullsync

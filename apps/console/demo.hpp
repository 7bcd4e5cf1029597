#pragma once

// --demo: our real server on an ephemeral loopback port, and a simulated
// backend that drives it through its HTTP API.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <caf/fwd.hpp>

#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_server.hpp"

namespace kullsync::console {

class demo {
public:
  /// Starts the server; `user` is whose shoots the backend simulates.
  demo(caf::actor_system& sys, std::string user);
  ~demo();

  /// ws://127.0.0.1:PORT/ws
  std::string url() const { return url_; }

  /// Starts the simulated backend thread.
  void start_backend();

private:
  void run_backend();

  caf::actor_system& sys_;
  std::string user_;
  server::sync_server server_;
  std::unique_ptr<beast_server> listener_;
  std::string url_;
  std::string http_;
  std::atomic<bool> stop_{false};
  std::thread backend_;
};

} // namespace kullsync::console

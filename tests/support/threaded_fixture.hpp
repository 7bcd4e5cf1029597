#pragma once

// A GoogleTest fixture with a real, threaded actor system that knows the
// server's (and so the client's) message types: for tests on real sockets.

#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "kullsync/server/server.hpp"

namespace kullsync::test {

class threaded_system_test : public ::testing::Test {
protected:
  threaded_system_test() : sys_(init(cfg_)) {}

  caf::actor_system_config cfg_;
  caf::actor_system sys_;

private:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    server::add_server_types(cfg);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    return cfg;
  }
};

} // namespace kullsync::test

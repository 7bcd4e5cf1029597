#pragma once

// The kit's simulated server (kullsync/testing/sim_server.hpp) and what the
// project's simulations make their backends publish.

#include <map>
#include <random>
#include <string>

#include "kullsync/messages/types.hpp"
#include "kullsync/testing/sim_server.hpp"
#include "sim_fixture.hpp"

namespace kullsync::test {

using sim::sim_server;

/// A backend's SHOOT_PROGRESS for one of `shoots` shoots ("s0", "s1", ...):
/// mostly processing at a random count, else completed or failed.
msg::shoot_progress random_shoot(std::mt19937_64& rng, int shoots);

/// "id:status/processedCount ..." for a failure message.
std::string describe(const std::map<std::string, msg::shoot_progress>& shoots);

} // namespace kullsync::test

#pragma once

/// The simulation kit (kullsync::testing): the rules of the v2 stream a
/// client engine can be made to break on purpose (mutated_client.hpp), so
/// that a simulation can show that its invariants catch the break. Never for
/// an app. Plain data: the engine's pure stream logic includes it.

#include <cstdint>

namespace kullsync::sim {

enum class stream_mutation : uint8_t {
  none,
  keep_duplicates,   // applies a message at or below the position
  ignore_gaps,       // applies a message that skips positions
  new_ids_on_resend, // resends the outbox under new ids
  ignore_snapshot,   // keeps its state when a SNAPSHOT replaces it
};

} // namespace kullsync::sim

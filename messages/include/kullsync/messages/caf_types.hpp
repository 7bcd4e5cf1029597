#pragma once

/// Makes the wire types CAF message types. Kept apart from types.hpp and
/// codec.hpp so that the codec compiles without CAF.
///
/// Each wire type is inspected as its canonical JSON text: the codec is the
/// single definition of every field, and optional/variant members need no
/// separate CAF mapping.

#include <string>

#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>

#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/types.hpp"

namespace kullsync::msg {

namespace detail {

template <class Inspector, class T>
typename Inspector::result_type inspect_as_json(Inspector& f, T& x,
                                                const char* name) {
  std::string json;
  if constexpr (Inspector::reads_state)
    json = to_json(x);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    auto r = from_json<T>(json);
    if (!r)
      return caf::make_error(caf::sec::invalid_argument, r.error().detail);
    x = std::move(*r);
    return caf::none;
  });
  return f(caf::meta::type_name(name), json, load);
}

} // namespace detail

#define KULLSYNC_JSON_INSPECT(T)                                               \
  template <class Inspector>                                                   \
  typename Inspector::result_type inspect(Inspector& f, T& x) {                \
    return detail::inspect_as_json(f, x, #T);                                  \
  }

KULLSYNC_JSON_INSPECT(shoot_progress)
KULLSYNC_JSON_INSPECT(credit_update)
KULLSYNC_JSON_INSPECT(prompt_change)
KULLSYNC_JSON_INSPECT(device_connection)
KULLSYNC_JSON_INSPECT(admin_session_update)
KULLSYNC_JSON_INSPECT(provider_health)
KULLSYNC_JSON_INSPECT(ping)
KULLSYNC_JSON_INSPECT(user_state)
KULLSYNC_JSON_INSPECT(welcome)
KULLSYNC_JSON_INSPECT(server_message)
KULLSYNC_JSON_INSPECT(client_message)

#undef KULLSYNC_JSON_INSPECT

/// Registers every wire type with `cfg` (call before creating the system).
void add_message_types(caf::actor_system_config& cfg);

} // namespace kullsync::msg

#pragma once

#include <string>

namespace kullsync::console {

/// The device id, generated once and kept in
/// $XDG_CONFIG_HOME/kullsync/device-id (or ~/.config/kullsync/device-id).
/// Falls back to a fresh id, with a warning, when the file cannot be written.
std::string persistent_device_id();

} // namespace kullsync::console

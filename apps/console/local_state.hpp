#pragma once

// What the console keeps on this machine between runs.

#include <string>

namespace kullsync::console {

/// The device id, generated once and kept in
/// $XDG_CONFIG_HOME/kullsync/device-id (or ~/.config/kullsync/device-id).
/// Falls back to a fresh id, with a warning, when the file cannot be written.
std::string persistent_device_id();

/// Where the stream position, its state and the unacknowledged messages of
/// `user` at `url` are kept: $XDG_STATE_HOME/kullsync/ (or
/// ~/.local/state/kullsync/), one file per user and endpoint. The directory
/// is created; "" when that fails (the console then keeps them in memory).
std::string stream_store_path(const std::string& user, const std::string& url);

} // namespace kullsync::console

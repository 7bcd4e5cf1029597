#pragma once

// kullsync-server's --config FILE: a TOML file holding flags under their
// names (`listen = "0.0.0.0:5000"`, `history-size = 1000`). What the command
// line or the environment sets wins over the file.

#include <string>

#include <CLI/CLI.hpp>

namespace kullsync::app {

/// Sets every option of `app` that `path` names and that neither the
/// command line nor the environment set. Throws std::invalid_argument naming
/// the file, the line and the key for a file that does not parse, an unknown
/// key, a value of the wrong type, or one the flag refuses.
void apply_config_file(CLI::App& app, const std::string& path);

} // namespace kullsync::app

#pragma once

/// One named spdlog logger per module ("client.connection", "server.hub",
/// ...), all writing to stderr, so stdout stays free for --json output.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace kullsync::log {

/// The logger for `module`, created on first use with the global level.
std::shared_ptr<spdlog::logger> get(const std::string& module);

/// Sets the level of every kullsync logger, present and future.
/// Accepts trace, debug, info, warn, error, critical, off.
bool set_level(const std::string& level);

/// "human" (the default: time, level, logger, message on one line) or
/// "json" (one object per line: time, level, logger, message). Control
/// characters are escaped either way. False for another name.
bool set_format(const std::string& format);

} // namespace kullsync::log

#pragma once

// The API keys file, read the same way by the server (every key) and by
// kullsync-ctl (the first): one key per line, blank lines and lines that
// start with '#' skipped, trailing CR and spaces trimmed.

#include <string>
#include <vector>

namespace kullsync::app {

/// The keys in `path`; throws std::invalid_argument naming `flag` when the
/// file cannot be read, holds no key, or a key is shorter than 16
/// characters.
std::vector<std::string> read_api_keys(const std::string& path, const std::string& flag);

} // namespace kullsync::app

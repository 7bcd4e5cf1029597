#include "api_keys.hpp"

#include <fstream>
#include <stdexcept>

namespace kullsync::app {

std::vector<std::string> read_api_keys(const std::string& path, const std::string& flag) {
  std::ifstream in{path};
  if (!in)
    throw std::invalid_argument(flag + ": cannot read '" + path + "'");
  std::vector<std::string> keys;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.pop_back();
    if (line.empty() || line[0] == '#')
      continue;
    if (line.size() < 16)
      throw std::invalid_argument(flag + ": the key on line " + std::to_string(n)
                                  + " is shorter than 16 characters");
    keys.push_back(line);
  }
  if (keys.empty())
    throw std::invalid_argument(flag + ": '" + path + "' holds no key");
  return keys;
}

} // namespace kullsync::app

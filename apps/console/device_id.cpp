#include "device_id.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "kullsync/log.hpp"

namespace fs = std::filesystem;

namespace kullsync::console {

namespace {

fs::path config_dir() {
  if (auto* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    return fs::path{xdg} / "kullsync";
  if (auto* home = std::getenv("HOME"); home && *home)
    return fs::path{home} / ".config" / "kullsync";
  return fs::path{".kullsync"};
}

std::string fresh_id() {
  std::random_device rd;
  std::mt19937_64 rng{(static_cast<uint64_t>(rd()) << 32) ^ rd()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = "console-";
  for (int i = 0; i < 12; ++i)
    id += hex[rng() % 16];
  return id;
}

bool valid(const std::string& id) {
  if (id.empty() || id.size() > 128)
    return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

} // namespace

std::string persistent_device_id() {
  auto file = config_dir() / "device-id";
  std::error_code ec;
  if (std::ifstream in{file}; in) {
    std::string id;
    std::getline(in, id);
    if (valid(id))
      return id;
    log::get("console")->warn("{} holds no valid device id: making a new one",
                              file.string());
  }
  auto id = fresh_id();
  fs::create_directories(file.parent_path(), ec);
  std::ofstream out{file};
  if (!(out << id << '\n'))
    log::get("console")->warn("cannot save the device id to {}: it will change "
                              "next time", file.string());
  return id;
}

} // namespace kullsync::console

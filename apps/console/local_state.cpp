#include "local_state.hpp"

#include <cstdint>
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

fs::path state_dir() {
  if (auto* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg)
    return fs::path{xdg} / "kullsync";
  if (auto* home = std::getenv("HOME"); home && *home)
    return fs::path{home} / ".local" / "state" / "kullsync";
  return fs::path{".kullsync"};
}

/// A file name from any text: letters, digits and '-_.' kept, the rest '_',
/// plus a hash of the whole so that different texts never share a file.
std::string file_name(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 80))
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  uint64_t h = 1469598103934665603ull; // FNV-1a
  for (unsigned char c : text)
    h = (h ^ c) * 1099511628211ull;
  static constexpr char hex[] = "0123456789abcdef";
  out += '-';
  for (int i = 0; i < 8; ++i, h >>= 4)
    out += hex[h & 0xf];
  return out;
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

namespace kullsync::console {

std::string stream_store_path(const std::string& user, const std::string& url) {
  auto dir = state_dir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    log::get("console")->warn("cannot create {}: the stream is kept in memory only",
                              dir.string());
    return {};
  }
  return (dir / (file_name(user + "@" + url) + ".json")).string();
}

} // namespace kullsync::console

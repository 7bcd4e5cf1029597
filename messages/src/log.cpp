#include "kullsync/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace kullsync::log {

namespace {

std::mutex mtx;
spdlog::level::level_enum global_level = spdlog::level::info;

spdlog::sink_ptr shared_sink() {
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

} // namespace

std::shared_ptr<spdlog::logger> get(const std::string& module) {
  auto name = "kullsync." + module;
  std::lock_guard<std::mutex> guard{mtx};
  if (auto existing = spdlog::get(name))
    return existing;
  auto lg = std::make_shared<spdlog::logger>(name, shared_sink());
  lg->set_level(global_level);
  lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  spdlog::register_logger(lg);
  return lg;
}

bool set_level(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    return false;
  std::lock_guard<std::mutex> guard{mtx};
  global_level = lvl;
  spdlog::apply_all([lvl](const std::shared_ptr<spdlog::logger>& lg) {
    if (lg->name().rfind("kullsync.", 0) == 0)
      lg->set_level(lvl);
  });
  return true;
}

} // namespace kullsync::log

#include "kullsync/log.hpp"

#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace kullsync::log {

namespace {

constexpr const char* human_pattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v";

/// Writes control characters of a message as \xNN: bytes from outside (an
/// id, a frame's field) must not forge a line or an escape sequence.
class escaping_formatter final : public spdlog::formatter {
public:
  explicit escaping_formatter(std::string pattern)
    : pattern_(std::move(pattern)),
      inner_(std::make_unique<spdlog::pattern_formatter>(pattern_)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto p = msg.payload;
    bool clean = true;
    for (size_t i = 0; i < p.size() && clean; ++i)
      clean = !is_control(static_cast<unsigned char>(p[i]));
    if (clean)
      return inner_->format(msg, dest);
    std::string esc;
    esc.reserve(p.size() + 16);
    for (size_t i = 0; i < p.size(); ++i) {
      auto c = static_cast<unsigned char>(p[i]);
      if (is_control(c)) {
        static constexpr char hex[] = "0123456789abcdef";
        esc += "\\x";
        esc += hex[c >> 4];
        esc += hex[c & 0xf];
      } else {
        esc += static_cast<char>(c);
      }
    }
    auto copy = msg;
    copy.payload = spdlog::string_view_t{esc.data(), esc.size()};
    inner_->format(copy, dest);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<escaping_formatter>(pattern_);
  }

private:
  static bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

  std::string pattern_;
  std::unique_ptr<spdlog::formatter> inner_;
};

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
  lg->set_formatter(std::make_unique<escaping_formatter>(human_pattern));
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

#include "kullsync/log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
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

/// One JSON object per line: time (UTC, ms), level, logger, message.
class json_formatter final : public spdlog::formatter {
public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto t = system_clock::to_time_t(msg.time);
    auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[40];
    std::snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    std::string line = "{\"time\":\"";
    line += ts;
    line += "\",\"level\":\"";
    auto lvl = spdlog::level::to_string_view(msg.level);
    line.append(lvl.data(), lvl.size());
    line += "\",\"logger\":";
    quote(line, {msg.logger_name.data(), msg.logger_name.size()});
    line += ",\"message\":";
    quote(line, {msg.payload.data(), msg.payload.size()});
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }

private:
  /// A JSON string; bytes that are not valid UTF-8 are replaced, so that
  /// every line parses.
  static void quote(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7f) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xf];
      } else if (c < 0x80) {
        out += static_cast<char>(c);
      } else {
        size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n != 0 && i + n <= s.size();
        for (size_t k = 1; ok && k < n; ++k)
          ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        if (ok) {
          out.append(s.data() + i, n);
          i += n - 1;
        } else {
          out += "\\ufffd";
        }
      }
    }
    out += '"';
  }
};

std::mutex mtx;
spdlog::level::level_enum global_level = spdlog::level::info;
bool json_lines = false;

std::unique_ptr<spdlog::formatter> make_formatter() {
  if (json_lines)
    return std::make_unique<json_formatter>();
  return std::make_unique<escaping_formatter>(human_pattern);
}

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
  lg->set_formatter(make_formatter());
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

bool set_format(const std::string& format) {
  if (format != "human" && format != "json")
    return false;
  std::lock_guard<std::mutex> guard{mtx};
  json_lines = format == "json";
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& lg) {
    if (lg->name().rfind("kullsync.", 0) == 0)
      lg->set_formatter(make_formatter());
  });
  return true;
}

} // namespace kullsync::log

#include "config_file.hpp"

#include <cstdio>
#include <stdexcept>

#include <toml++/toml.h>

namespace kullsync::app {

namespace {

std::string where(const std::string& path, const toml::source_region& at) {
  return path + ":" + std::to_string(at.begin.line);
}

/// The value as the flag's text, or throws if its TOML type does not fit
/// the flag's (CLI11's type names: TEXT, UINT, INT, FLOAT).
std::string as_flag_text(const toml::node& v, const std::string& type,
                         const std::string& at, const std::string& key) {
  auto fail = [&](const char* want) {
    return std::invalid_argument(at + ": '" + key + "' must be " + want);
  };
  if (type.rfind("TEXT", 0) == 0) {
    if (auto s = v.value<std::string>(); s && v.is_string())
      return *s;
    throw fail("a string");
  }
  if (type.rfind("UINT", 0) == 0 || type.rfind("INT", 0) == 0) {
    if (!v.is_integer())
      throw fail(type[0] == 'U' ? "a non-negative integer" : "an integer");
    auto n = *v.value<int64_t>();
    if (type[0] == 'U' && n < 0)
      throw fail("a non-negative integer");
    return std::to_string(n);
  }
  if (type.rfind("FLOAT", 0) == 0) {
    if (!v.is_number())
      throw fail("a number");
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", *v.value<double>());
    return buf;
  }
  throw fail(("a value of type " + type).c_str());
}

} // namespace

void apply_config_file(CLI::App& app, const std::string& path) {
  toml::table file;
  try {
    file = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::invalid_argument(where(path, e.source()) + ": " + std::string{e.description()});
  }
  for (auto&& [k, v] : file) {
    std::string key{k.str()};
    auto at = where(path, k.source());
    auto* opt = key == "config" ? nullptr : app.get_option_no_throw("--" + key);
    if (opt == nullptr)
      throw std::invalid_argument(at + ": unknown key '" + key + "' (keys are the flags of --help "
                                  "without their dashes)");
    std::vector<std::string> texts;
    if (auto* list = v.as_array(); list && opt->get_items_expected_max() > 1) {
      for (auto& item : *list)
        texts.push_back(as_flag_text(item, opt->get_type_name(), at, key));
    } else {
      texts.push_back(as_flag_text(v, opt->get_type_name(), at, key));
    }
    if (opt->count() > 0)
      continue; // set on the command line or in the environment: they win
    for (auto& text : texts)
      opt->add_result(text);
    try {
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw std::invalid_argument(at + ": '" + key + "': " + e.what());
    }
  }
}

} // namespace kullsync::app

#pragma once

// A minimal append-only JSON writer: fixed key order, no intermediate DOM,
// one buffer per frame. Private to the codec.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kullsync::msg::detail {

class json_writer {
public:
  explicit json_writer(std::string& out) : out_(out) {}

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  void key(std::string_view k) {
    comma();
    quoted(k);
    out_ += ':';
    first_ = true; // the value that follows takes no comma
  }

  void value(std::string_view s) { comma(); quoted(s); }
  void value(const std::string& s) { value(std::string_view{s}); }
  void value(const char* s) { value(std::string_view{s}); }
  void value(bool b) { comma(); out_ += b ? "true" : "false"; }
  void value(int64_t x) {
    comma();
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), x);
    out_.append(buf, res.ptr);
  }
  void value(uint64_t x) {
    comma();
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof(buf), x);
    out_.append(buf, res.ptr);
  }
  void value(double x) {
    comma();
    if (!std::isfinite(x)) {
      out_ += "null";
      return;
    }
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof(buf), x);
    out_.append(buf, res.ptr);
  }
  void null() { comma(); out_ += "null"; }
  /// Appends already serialised JSON.
  void raw(std::string_view json) { comma(); out_ += json; }

  template <class T>
  void field(std::string_view k, const T& x) {
    key(k);
    value(x);
  }
  template <class T>
  void optional_field(std::string_view k, const std::optional<T>& x) {
    if (x)
      field(k, *x);
  }

private:
  void open(char c) { comma(); out_ += c; first_ = true; }
  void close(char c) { out_ += c; first_ = false; }
  void comma() {
    if (!first_)
      out_ += ',';
    first_ = false;
  }
  void quoted(std::string_view s);

  std::string& out_;
  bool first_ = true;
};

inline void json_writer::quoted(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out_ += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      case '\b': out_ += "\\b"; break;
      case '\f': out_ += "\\f"; break;
      default:
        if (c < 0x20) {
          out_ += "\\u00";
          out_ += hex[c >> 4];
          out_ += hex[c & 0xf];
        } else {
          out_ += ch;
        }
    }
  }
  out_ += '"';
}

} // namespace kullsync::msg::detail

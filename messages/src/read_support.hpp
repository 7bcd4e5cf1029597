#pragma once

// Private to kullsync_messages: what the JSON reader (reader.cpp) builds on:
// the field path of an error, scalar conversions with their checks, and
// reading the fields of one object. Included by reader.cpp only.

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "kullsync/messages/codec.hpp"

namespace kullsync::msg::detail::read {

namespace json = boost::json;

// -- error reporting ----------------------------------------------------------

/// A field path kept on the stack while descending; rendered only on error.
struct path_node {
  const path_node* parent = nullptr;
  std::string_view key;
  size_t index = 0;
  bool is_index = false;
};

inline void render(const path_node* p, std::string& out) {
  if (p == nullptr)
    return;
  render(p->parent, out);
  if (p->is_index) {
    out += '[';
    out += std::to_string(p->index);
    out += ']';
  } else if (!p->key.empty()) {
    if (!out.empty())
      out += '.';
    out += p->key;
  }
}

/// Thrown inside the decoder only; decode_* catch it and return the error.
struct failure {
  decode_error err;
};

[[noreturn]] inline void fail(decode_errc code, const path_node* at,
                       std::string_view what) {
  decode_error e;
  e.code = code;
  render(at, e.path);
  e.detail = e.path.empty() ? std::string{what}
                            : e.path + ": " + std::string{what};
  throw failure{std::move(e)};
}

inline std::string_view kind_name(json::kind k) {
  switch (k) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "bool";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "?";
}

[[noreturn]] inline void wrong_type(const json::value& v, const path_node* at,
                             std::string_view expected) {
  std::string what = "expected ";
  what += expected;
  what += ", got ";
  what += kind_name(v.kind());
  fail(decode_errc::wrong_type, at, what);
}

// -- scalar conversion --------------------------------------------------------

inline std::string as_string(const json::value& v, const path_node* at) {
  if (!v.is_string())
    wrong_type(v, at, "string");
  auto& s = v.get_string();
  return std::string{s.data(), s.size()};
}

inline int64_t as_int(const json::value& v, const path_node* at) {
  switch (v.kind()) {
    case json::kind::int64:
      return v.get_int64();
    case json::kind::uint64:
      if (v.get_uint64()
          > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(decode_errc::out_of_range, at, "integer out of range");
      return static_cast<int64_t>(v.get_uint64());
    case json::kind::double_: {
      // JavaScript senders produce 12.0 or 11.999999 for counts; accept any
      // finite float that fits and round it.
      auto d = v.get_double();
      if (!std::isfinite(d) || d >= 9.2233720368547758e18
          || d < -9.2233720368547758e18)
        fail(decode_errc::out_of_range, at, "number out of integer range");
      return std::llround(d);
    }
    default:
      wrong_type(v, at, "integer");
  }
}

inline double as_number(const json::value& v, const path_node* at) {
  switch (v.kind()) {
    case json::kind::int64: return static_cast<double>(v.get_int64());
    case json::kind::uint64: return static_cast<double>(v.get_uint64());
    case json::kind::double_:
      if (!std::isfinite(v.get_double()))
        fail(decode_errc::out_of_range, at, "number is not finite");
      return v.get_double();
    default: wrong_type(v, at, "number");
  }
}

inline bool as_bool(const json::value& v, const path_node* at) {
  if (!v.is_bool())
    wrong_type(v, at, "bool");
  return v.get_bool();
}

/// A stream position: an integer that is not negative.
inline uint64_t as_seq(const json::value& v, const path_node* at) {
  auto i = as_int(v, at);
  if (i < 0)
    fail(decode_errc::out_of_range, at, "a stream position cannot be negative");
  return static_cast<uint64_t>(i);
}

/// A v2 client message id: a string of 1 to 64 characters.
inline std::string as_message_id(const json::value& v, const path_node* at) {
  auto s = as_string(v, at);
  if (s.empty() || utf8_length(s) > max_message_id)
    fail(decode_errc::out_of_range, at,
         "an id has 1 to " + std::to_string(max_message_id) + " characters");
  return s;
}

template <class E>
E as_enum(const json::value& v, const path_node* at, std::string_view allowed) {
  if (!v.is_string())
    wrong_type(v, at, "string");
  auto& s = v.get_string();
  E x{};
  if (!from_string(std::string_view{s.data(), s.size()}, x)) {
    std::string what = "'";
    what.append(s.data(), std::min<size_t>(s.size(), 64));
    what += "' is not one of ";
    what += allowed;
    fail(decode_errc::bad_enum, at, what);
  }
  return x;
}

// -- objects ------------------------------------------------------------------

/// Reads the fields of one JSON object; absent and null are the same thing.
class object_reader {
public:
  object_reader(const json::value& v, const path_node* at) : at_(at) {
    if (!v.is_object())
      wrong_type(v, at, "object");
    obj_ = &v.get_object();
  }

  const json::value* find(std::string_view key) const {
    auto* v = obj_->if_contains(key);
    return (v == nullptr || v->is_null()) ? nullptr : v;
  }
  /// Whether `key` is there with the value null (which find() skips).
  bool is_null(std::string_view key) const {
    auto* v = obj_->if_contains(key);
    return v != nullptr && v->is_null();
  }

  /// A path node for `key`, valid while the node lives in the caller's frame.
  path_node at(std::string_view key) const { return {at_, key, 0, false}; }

  const json::value& required(std::string_view key) const {
    if (auto* v = find(key))
      return *v;
    auto p = at(key);
    fail(decode_errc::missing_field, &p, "required field is missing");
  }

  template <class F>
  auto req(std::string_view key, F conv) const {
    auto p = at(key);
    return conv(required(key), &p);
  }

  template <class F>
  auto opt(std::string_view key, F conv) const
    -> std::optional<decltype(conv(std::declval<const json::value&>(),
                                   nullptr))> {
    auto* v = find(key);
    if (v == nullptr)
      return std::nullopt;
    auto p = at(key);
    return conv(*v, &p);
  }

  std::string str(std::string_view key) const { return req(key, as_string); }
  std::string str_or_empty(std::string_view key) const {
    return opt(key, as_string).value_or(std::string{});
  }
  int64_t int_(std::string_view key) const { return req(key, as_int); }
  int64_t int_or(std::string_view key, int64_t dflt) const {
    return opt(key, as_int).value_or(dflt);
  }
  double num_or(std::string_view key, double dflt) const {
    return opt(key, as_number).value_or(dflt);
  }

  template <class E>
  E enum_(std::string_view key, std::string_view allowed) const {
    auto p = at(key);
    return as_enum<E>(required(key), &p, allowed);
  }

  const path_node* path() const { return at_; }

private:
  const json::object* obj_ = nullptr;
  const path_node* at_;
};

} // namespace kullsync::msg::detail::read

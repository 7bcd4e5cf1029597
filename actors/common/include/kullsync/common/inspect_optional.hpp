#pragma once

/// CAF 0.17 inspects caf::optional but not std::optional: this adapter lets an
// inspect overload pass `optional_field(x.member)` (as an lvalue).

#include <optional>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>

namespace kullsync::detail {

template <class T>
struct optional_ref {
  std::optional<T>& x;
};

template <class T>
optional_ref<T> optional_field(std::optional<T>& x) {
  return {x};
}

template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, optional_ref<T>& r) {
  bool has = r.x.has_value();
  T tmp = has ? *r.x : T{};
  auto load = caf::meta::load_callback([&]() -> caf::error {
    if (has)
      r.x = std::move(tmp);
    else
      r.x.reset();
    return caf::none;
  });
  return f(has, tmp, load);
}

} // namespace kullsync::detail

#pragma once

// Private to kullsync_messages: the JSON writer behind the codec's encoders.

#include <string>

#include "kullsync/messages/types.hpp"

namespace kullsync::msg::detail {

/// `x` as JSON text, in the deployed shape.
template <class T>
std::string write_text(const T& x);

} // namespace kullsync::msg::detail

#pragma once

/// Decoding from a JSON value already parsed with Boost.JSON, for code that
/// reads other fields of the same document too (the server's HTTP triggers),
/// so that a body is parsed once. Includes Boost.JSON: keep it out of widely
/// included headers.

#include <boost/json/value.hpp>

#include "kullsync/messages/codec.hpp"

namespace kullsync::msg {

/// As from_json, from a parsed value (no size or depth limit: the parser
/// that made `v` applied them).
template <class T>
decode_result<T> from_json_value(const boost::json::value& v);

} // namespace kullsync::msg

#pragma once

/// A one-pass reader for the frame clients receive most: SHOOT_PROGRESS.
/// Private to the codec.

#include <cstddef>
#include <optional>
#include <string_view>

#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/types.hpp"

namespace kullsync::msg::detail {

/// Decodes a plain SHOOT_PROGRESS frame straight from its text, without
/// building a JSON tree. Returns nothing for every other frame: another type,
/// "data" before "type", a field of another type or shape than the protocol's,
/// a nested extra field, a duplicate key, a number the general decoder would
/// reject, invalid JSON. The caller then decodes the frame the general way,
/// which gives the same result for what this reader accepts (tests compare
/// the two) and words the error for what it does not.
std::optional<server_message> read_progress_frame(std::string_view text,
                                                  size_t max_depth);

/// The same into `out` (untouched when it returns false): a caller filling a
/// container decodes in place instead of moving the message along.
bool read_progress_frame(std::string_view text, size_t max_depth,
                         server_message& out);

/// decode_server without the one-pass reader (tests compare the two).
decode_result<server_message> decode_server_general(std::string_view text,
                                                    const decode_limits& lim);

} // namespace kullsync::msg::detail

#pragma once

// Private to kullsync_messages: the JSON reader behind the codec's decoders.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "kullsync/messages/codec.hpp"

namespace kullsync::msg::detail {

/// Parses `text` within `lim` and reads it as T (a frame or a payload).
/// Never throws.
template <class T>
decode_result<T> read_text(std::string_view text, const decode_limits& lim);

/// A client message's payload as a relay forwards it: as received, but
/// numbers in their shortest form (12.5, not 1.25E1) and an
/// UPDATE_PROGRESS's counts as they were read (rounded).
std::string relay_text(const boost::json::value& payload, const client_message& m);

/// The "id" of a client frame's top level as a refusal echoes it, if the
/// frame is an object that has one. Never throws.
std::optional<echoed_id> read_client_id(std::string_view text,
                                        const decode_limits& lim);
/// The same, within `lim` only (read_client_id also reads frames refused
/// for what JSON allows).
std::optional<echoed_id> read_client_id_strict(std::string_view text,
                                               const decode_limits& lim);
std::optional<uint64_t> read_server_seq(std::string_view text, const decode_limits& lim);

/// Reads an already parsed value as T. Never throws.
template <class T>
decode_result<T> read_value(const boost::json::value& v);

} // namespace kullsync::msg::detail

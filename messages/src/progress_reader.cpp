#include "progress_reader.hpp"

#include "kullsync/messages/keys.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace kullsync::msg::detail {

namespace {

namespace json = boost::json;
using error_code = boost::system::error_code;

enum field : uint8_t {
  other,
  // envelope
  type,
  data,
  timestamp,
  device_id,
  user_id,
  seq,
  // data of SHOOT_PROGRESS
  shoot_id,
  status,
  processed_count,
  total_count,
  current_image,
  eta,
  provider,
  error_message,
};

struct named_field {
  std::string_view key;
  field id;
};

constexpr named_field envelope_fields[] = {
  {keys::type, type}, {keys::data, data}, {keys::timestamp, timestamp},
  {keys::device_id, device_id}, {keys::user_id, user_id}, {keys::seq, seq},
};

constexpr named_field data_fields[] = {
  {keys::shoot_id, shoot_id}, {keys::status, status},
  {keys::processed_count, processed_count}, {keys::total_count, total_count},
  {keys::current_image, current_image}, {keys::eta, eta}, {keys::provider, provider},
  {keys::error_message, error_message},
};

/// The field `k` names in `fields`; `other` for an extra the reader skips.
template <size_t N>
field field_named(const named_field (&fields)[N], std::string_view k) {
  for (auto& f : fields)
    if (f.key == k)
      return f.id;
  return other;
}

/// Receives the parser's events for one frame and fills a server_message.
/// Every handler returns false ("not for me") as soon as the frame leaves
/// the plain shape; the parser then stops.
class progress_handler {
public:
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code& ec) { return give_up(ec); }
  bool on_array_end(std::size_t, error_code& ec) { return give_up(ec); }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }
  bool on_number_part(json::string_view, error_code&) { return true; }

  bool on_object_begin(error_code& ec) {
    if (depth_ == 0 || (depth_ == 1 && key_ == data && is_progress_)) {
      ++depth_;
      return true;
    }
    return give_up(ec);
  }

  bool on_object_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    part_.append(s.data(), s.size());
    return true;
  }

  bool on_key(json::string_view s, std::size_t, error_code& ec) {
    auto k = whole(s);
    key_ = depth_ == 1 ? field_named(envelope_fields, k)
                       : field_named(data_fields, k);
    part_.clear();
    if (key_ == other)
      return true;
    auto bit = uint32_t{1} << key_;
    if ((seen_ & bit) != 0)
      return give_up(ec); // the general decoder keeps the last; leave it that
    seen_ |= bit;
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    part_.append(s.data(), s.size());
    return true;
  }

  bool on_string(json::string_view s, std::size_t, error_code& ec) {
    auto ok = string_value(whole(s));
    part_.clear();
    return ok || give_up(ec);
  }

  bool on_int64(int64_t i, json::string_view, error_code& ec) {
    return integer(i, static_cast<double>(i)) || give_up(ec);
  }

  bool on_uint64(uint64_t u, json::string_view, error_code& ec) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return (depth_ > 0 && key_ == other) || give_up(ec);
    return integer(static_cast<int64_t>(u), static_cast<double>(u))
           || give_up(ec);
  }

  bool on_double(double d, json::string_view, error_code& ec) {
    if (depth_ > 0 && key_ == other)
      return true;
    if (!std::isfinite(d))
      return give_up(ec);
    if (key_ == eta) {
      msg_.eta = d;
      return true;
    }
    if (d >= 9.2233720368547758e18 || d < -9.2233720368547758e18)
      return give_up(ec);
    return integer(std::llround(d), d) || give_up(ec);
  }

  bool on_bool(bool, error_code& ec) {
    return (depth_ > 0 && key_ == other) || give_up(ec);
  }

  bool on_null(error_code& ec) {
    if (depth_ == 0)
      return give_up(ec);
    switch (key_) {
      case other:
      case device_id:
      case user_id:
      case seq:
      case current_image:
      case eta:
      case provider:
      case error_message:
        return true; // the general decoder treats null as absent
      default:
        return give_up(ec);
    }
  }

  /// Fills `m` if every required field was there.
  bool finish(server_message& m) {
    constexpr uint32_t required
      = (1u << type) | (1u << data) | (1u << timestamp) | (1u << shoot_id)
        | (1u << status) | (1u << processed_count) | (1u << total_count);
    if ((seen_ & required) != required || !is_progress_ || !has_timestamp_
        || !has_status_)
      return false;
    m.type = server_type::shoot_progress;
    m.type_name = "SHOOT_PROGRESS";
    m.timestamp = timestamp_;
    m.device_id = std::move(device_id_);
    m.user_id = std::move(user_id_);
    m.seq = seq_;
    m.body = std::move(msg_);
    return true;
  }

private:
  static bool give_up(error_code& ec) {
    ec = json::error::syntax; // any error: the caller only sees "no"
    return false;
  }

  std::string_view whole(json::string_view last) {
    if (part_.empty())
      return {last.data(), last.size()};
    part_.append(last.data(), last.size());
    return part_;
  }

  bool string_value(std::string_view v) {
    if (depth_ == 0)
      return false;
    switch (key_) {
      case other: return true;
      case type:
        is_progress_ = v == "SHOOT_PROGRESS";
        return is_progress_;
      case device_id: device_id_ = std::string{v}; return true;
      case user_id: user_id_ = std::string{v}; return true;
      case shoot_id: msg_.shoot_id = std::string{v}; return true;
      case status: has_status_ = from_string(v, msg_.status); return has_status_;
      case current_image: msg_.current_image = std::string{v}; return true;
      case provider: msg_.provider = std::string{v}; return true;
      case error_message: msg_.error_message = std::string{v}; return true;
      default: return false;
    }
  }

  /// A JSON number for an integer field (`i`, rounded) or for eta (`d`).
  bool integer(int64_t i, double d) {
    if (depth_ == 0)
      return false;
    switch (key_) {
      case other: return true;
      case timestamp: timestamp_ = i; has_timestamp_ = true; return true;
      case seq:
        if (i < 0)
          return false; // the general decoder words the error
        seq_ = static_cast<uint64_t>(i);
        return true;
      case processed_count: msg_.processed_count = i; return true;
      case total_count: msg_.total_count = i; return true;
      case eta: msg_.eta = d; return true;
      default: return false;
    }
  }

  int depth_ = 0;
  field key_ = other;
  uint32_t seen_ = 0;
  bool is_progress_ = false;
  bool has_timestamp_ = false;
  bool has_status_ = false;
  int64_t timestamp_ = 0;
  std::optional<std::string> device_id_;
  std::optional<std::string> user_id_;
  std::optional<uint64_t> seq_;
  shoot_progress msg_;
  std::string part_; // a key or string that arrives in pieces
};

} // namespace

bool read_progress_frame(std::string_view text, size_t max_depth,
                         server_message& out) {
  json::parse_options opts;
  opts.max_depth = max_depth;
  json::basic_parser<progress_handler> p{opts};
  error_code ec;
  auto n = p.write_some(false, text.data(), text.size(), ec);
  if (ec || n != text.size())
    return false;
  return p.handler().finish(out);
}

std::optional<server_message> read_progress_frame(std::string_view text,
                                                  size_t max_depth) {
  server_message m;
  if (!read_progress_frame(text, max_depth, m))
    return std::nullopt;
  return m;
}

} // namespace kullsync::msg::detail

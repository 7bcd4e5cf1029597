// A client message's payload as a relay forwards it (reader.hpp's
// relay_text): the received fields in their order, written once.
#include "reader.hpp"

#include <boost/json/value.hpp>

#include "json_writer.hpp"
#include "kullsync/messages/keys.hpp"

namespace json = boost::json;

namespace kullsync::msg::detail {

namespace {

void write_value(json_writer& w, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      w.begin_object();
      for (auto& kv : v.get_object()) {
        w.key({kv.key().data(), kv.key().size()});
        write_value(w, kv.value());
      }
      w.end_object();
      break;
    case json::kind::array:
      w.begin_array();
      for (auto& x : v.get_array())
        write_value(w, x);
      w.end_array();
      break;
    case json::kind::string:
      w.value(std::string_view{v.get_string().data(), v.get_string().size()});
      break;
    case json::kind::int64: w.value(v.get_int64()); break;
    case json::kind::uint64: w.value(v.get_uint64()); break;
    // The shortest text that reads back the same (12.5, not 1.25E1, as a
    // JavaScript relay writes it; exponents in C's form: 1e-07); -0 is 0,
    // as JSON.stringify has it.
    case json::kind::double_: w.value(v.get_double() == 0 ? 0.0 : v.get_double()); break;
    case json::kind::bool_: w.value(v.get_bool()); break;
    case json::kind::null: w.null(); break;
  }
}

} // namespace

std::string relay_text(const json::value& payload, const client_message& m) {
  std::string out;
  json_writer w{out};
  auto* progress = std::get_if<shoot_progress>(&m.body);
  auto* o = payload.if_object();
  if (!progress || !o) {
    write_value(w, payload);
    return out;
  }
  // The counts as the stream's state keeps them (a JavaScript sender's 12.0
  // or 11.999999 is read rounded): a device that replays or takes a SNAPSHOT
  // sees what the live one saw.
  w.begin_object();
  for (auto& kv : *o) {
    std::string_view k{kv.key().data(), kv.key().size()};
    w.key(k);
    if (k == keys::processed_count)
      w.value(progress->processed_count);
    else if (k == keys::total_count)
      w.value(progress->total_count);
    else
      write_value(w, kv.value());
  }
  w.end_object();
  return out;
}

} // namespace kullsync::msg::detail

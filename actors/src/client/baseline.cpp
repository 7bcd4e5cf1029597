#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "kullsync/client/engine.hpp"
#include "kullsync/messages/codec.hpp"

namespace json = boost::json;

namespace kullsync {

std::optional<state_baseline> parse_state_baseline(const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object())
    return std::nullopt;
  auto& o = v.get_object();
  state_baseline b;
  if (auto* c = o.if_contains("credits"); c && c->is_int64())
    b.credits = c->get_int64();
  if (auto* xs = o.if_contains("shoots"); xs && xs->is_array())
    for (auto& x : xs->get_array())
      if (auto p = msg::from_json<msg::shoot_progress>(json::serialize(x)))
        b.shoots.push_back(std::move(*p));
  return b;
}

} // namespace kullsync

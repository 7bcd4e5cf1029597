#include "redis_codec.hpp"

#include <charconv>
#include <limits>

namespace kullsync::broker {

using server::broker_errc;

namespace {

caf::error bad(std::string what) {
  return server::make_error(broker_errc::bad_reply, std::move(what));
}

/// A reply that is an error: the link's (unavailable) or Redis' own.
caf::error failed(const char* step, const redis_value& v) {
  if (v.kind == redis_value::lost)
    return server::make_error(broker_errc::unavailable, std::string{step} + ": " + v.str);
  return bad(std::string{step} + ": " + v.str);
}

/// All of `s` as a number of type T, or nothing.
template <class T>
std::optional<T> to_int(std::string_view s) {
  T x = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty())
    return std::nullopt;
  return x;
}

bool is_frame(std::string_view f) {
  return f.size() >= 2 && f.front() == '{' && f.back() == '}';
}

bool array_of(const redis_value& v, size_t n) {
  return v.kind == redis_value::array && v.elements.size() == n;
}

} // namespace

user_keys keys_for(const std::string& prefix, const std::string& user) {
  auto base = prefix + "{" + user + "}:";
  return {base + "m", base + "s", base + "st", base + "t", base + "p", base + "c",
          base + "d:"};
}

std::optional<std::string> user_of_channel(const std::string& prefix,
                                           const std::string& channel) {
  auto head = prefix + "{";
  constexpr std::string_view tail = "}:c";
  if (channel.size() < head.size() + tail.size() || channel.compare(0, head.size(), head) != 0
      || channel.compare(channel.size() - tail.size(), tail.size(), tail) != 0)
    return std::nullopt;
  return channel.substr(head.size(), channel.size() - head.size() - tail.size());
}

uint32_t shard_of(const std::string& user, uint32_t shards) {
  // FNV-1a: the same on every node and build (std::hash is not).
  uint64_t key = 14695981039346656037ull;
  for (unsigned char c : user)
    key = (key ^ c) * 1099511628211ull;
  // Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm".
  int64_t b = -1, j = 0;
  while (j < static_cast<int64_t>(shards)) {
    b = j;
    key = key * 2862933555777941757ull + 1;
    j = static_cast<int64_t>(static_cast<double>(b + 1)
                             * (static_cast<double>(1ll << 31)
                                / static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<uint32_t>(b);
}

script_call publish_call(const user_keys& k, const server::publish_request& req,
                         const redis_broker_config& cfg, const std::string& run,
                         const std::string& new_epoch) {
  script_call c;
  auto dedup = req.dedup_key.empty() ? k.meta : k.dedup_prefix + req.dedup_key;
  c.keys = {k.meta, k.stream, k.state, k.terms, k.presence, dedup};
  std::string presence = "0", field, value;
  if (req.presence) {
    presence = req.present ? "1" : "2";
    field = req.presence->node + "|" + req.presence->device;
    value = std::to_string(req.presence->connected_at);
  }
  c.args = {run,
            new_epoch,
            req.numbered ? "1" : "0",
            k.channel,
            req.msg.frame,
            req.msg.origin,
            std::to_string(cfg.history_size),
            std::to_string(cfg.history_ttl_ms),
            std::to_string(cfg.state_ttl_ms),
            req.dedup_key,
            std::to_string(cfg.dedup_ttl_ms),
            req.state_field,
            req.state_terminal ? "1" : "0",
            std::to_string(req.state_rank),
            std::to_string(req.state_at),
            std::to_string(req.state_now),
            std::to_string(req.state_linger_ms),
            presence,
            field,
            value};
  return c;
}

script_call head_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& alive_prefix) {
  return {{k.meta, k.stream, k.state, k.presence}, {run, new_epoch, alive_prefix}};
}

script_call read_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& epoch,
                      uint64_t since, uint64_t upto) {
  auto to = upto == std::numeric_limits<uint64_t>::max() ? std::string{"+"}
                                                         : std::to_string(upto);
  return {{k.meta, k.stream}, {run, new_epoch, epoch, std::to_string(since), to}};
}

caf::expected<server::publish_receipt> parse_publish(const redis_value& v) {
  if (v.is_error())
    return failed("publish", v);
  if (!array_of(v, 3) || v.elements[0].kind != redis_value::integer
      || v.elements[1].kind != redis_value::string
      || v.elements[2].kind != redis_value::integer || v.elements[0].number < 0)
    return bad("publish: not {seq, epoch, duplicate}");
  return server::publish_receipt{static_cast<uint64_t>(v.elements[0].number),
                                 v.elements[1].str, v.elements[2].number == 1};
}

caf::expected<server::stream_head> parse_head(const redis_value& v) {
  if (v.is_error())
    return failed("head", v);
  if (!array_of(v, 4) || v.elements[0].kind != redis_value::string
      || v.elements[1].kind != redis_value::integer || v.elements[1].number < 0
      || v.elements[2].kind != redis_value::array
      || v.elements[3].kind != redis_value::array || v.elements[3].elements.size() % 2)
    return bad("head: not {epoch, top, state, presence}");
  server::stream_head h;
  h.epoch = v.elements[0].str;
  h.top = static_cast<uint64_t>(v.elements[1].number);
  for (auto& s : v.elements[2].elements) {
    // "terminal|rank|at|until|frame"
    std::string_view text = s.str;
    size_t bar[4];
    size_t from = 0;
    for (auto& x : bar) {
      x = text.find('|', from);
      if (x == std::string_view::npos || s.kind != redis_value::string)
        return bad("head: a state value without its fields");
      from = x + 1;
    }
    auto until = to_int<int64_t>(text.substr(bar[2] + 1, bar[3] - bar[2] - 1));
    auto frame = text.substr(bar[3] + 1);
    if (!until || !is_frame(frame))
      return bad("head: a state value is not a frame");
    h.state.push_back({std::string{frame}, *until});
  }
  auto& p = v.elements[3].elements;
  for (size_t i = 0; i + 1 < p.size(); i += 2) {
    auto bar = p[i].str.find('|');
    auto when = to_int<int64_t>(p[i + 1].str);
    if (bar == std::string::npos || !when)
      return bad("head: a presence entry is not node|device -> time");
    h.devices.push_back({p[i].str.substr(0, bar), p[i].str.substr(bar + 1), *when});
  }
  return h;
}

caf::expected<server::stream_range> parse_read(const redis_value& v,
                                               const std::string& user) {
  if (v.is_error())
    return failed("read", v);
  if (!array_of(v, 3) || v.elements[0].kind != redis_value::string
      || v.elements[1].kind != redis_value::integer
      || v.elements[2].kind != redis_value::array)
    return bad("read: not {epoch, complete, entries}");
  server::stream_range r;
  r.epoch = v.elements[0].str;
  r.complete = v.elements[1].number == 1;
  for (auto& e : v.elements[2].elements) {
    // [id, [field, frame]]
    if (!array_of(e, 2) || !array_of(e.elements[1], 2))
      return bad("read: an entry is not [id, [field, frame]]");
    auto& id = e.elements[0].str;
    auto seq = to_int<uint64_t>(std::string_view{id}.substr(0, id.find('-')));
    auto& frame = e.elements[1].elements[1].str;
    if (!seq || !is_frame(frame))
      return bad("read: an entry's id or frame is malformed");
    server::stream_message m;
    m.user = user;
    m.seq = *seq;
    m.epoch = r.epoch;
    m.frame = frame;
    r.messages.push_back(std::move(m));
  }
  return r;
}

std::optional<server::stream_message> parse_channel_message(std::string user,
                                                            const std::string& payload) {
  auto a = payload.find(' ');
  auto b = a == std::string::npos ? a : payload.find(' ', a + 1);
  auto c = b == std::string::npos ? b : payload.find(' ', b + 1);
  if (c == std::string::npos)
    return std::nullopt;
  auto seq = to_int<uint64_t>(std::string_view{payload}.substr(0, a));
  auto frame = std::string_view{payload}.substr(c + 1);
  if (!seq || !is_frame(frame))
    return std::nullopt;
  server::stream_message m;
  m.user = std::move(user);
  m.seq = *seq;
  m.epoch = payload.substr(a + 1, b - a - 1);
  m.origin = payload.substr(b + 1, c - b - 1);
  m.frame = std::string{frame};
  return m;
}

std::optional<std::string> run_id_of(const std::string& info) {
  constexpr std::string_view key = "run_id:";
  auto at = info.find(key);
  if (at == std::string::npos)
    return std::nullopt;
  auto from = at + key.size();
  auto end = info.find_first_of("\r\n", from);
  auto id = info.substr(from, end == std::string::npos ? std::string::npos : end - from);
  if (id.empty())
    return std::nullopt;
  return id;
}

} // namespace kullsync::broker

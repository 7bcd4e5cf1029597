#include "redis_codec.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include "kullsync/common/numbers.hpp"
#include "redis_scripts.hpp"

namespace kullsync::broker {

using server::broker_errc;

namespace {

caf::error bad(std::string what) {
  return server::make_error(broker_errc::bad_reply, std::move(what));
}

/// A reply that is an error: the link's or Redis' own. Reads and heads
/// change nothing that matters, so a lost reply is only unavailable.
caf::error failed(const char* step, const redis_value& v) {
  if (v.kind == redis_value::unsent || v.kind == redis_value::lost)
    return server::make_error(broker_errc::unavailable, std::string{step} + ": " + v.str);
  return bad(std::string{step} + ": " + v.str);
}

bool is_frame(std::string_view f) {
  return f.size() >= 2 && f.front() == '{' && f.back() == '}';
}

bool array_of(const redis_value& v, size_t n) {
  return v.kind == redis_value::array && v.elements.size() == n;
}

/// "connected at|protocol" (protocol 1 or 2).
std::optional<std::pair<int64_t, int>> presence_value(std::string_view v) {
  auto bar = v.find('|');
  if (bar == std::string_view::npos)
    return std::nullopt;
  auto at = to_int<int64_t>(v.substr(0, bar));
  auto protocol = to_int<int>(v.substr(bar + 1));
  if (!at || !protocol || (*protocol != 1 && *protocol != 2))
    return std::nullopt;
  return std::make_pair(*at, *protocol);
}

} // namespace

user_keys keys_for(const std::string& prefix, const std::string& user) {
  auto base = prefix + "{" + user + "}:";
  return {base, base + "st", base + "s", base + "p", base + "c"};
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

std::string publish_script(const redis_broker_config& cfg) {
  // MAXLEN and DEDUP_TTL go to Redis commands as they are: as strings, Lua
  // need not format them on every call.
  return "local MAXLEN, STREAM_TTL, STATE_TTL, DEDUP_TTL, MAX_SHOOTS, IDLE = '"
         + std::to_string(cfg.history_size) + "', " + std::to_string(cfg.history_ttl_ms)
         + ", " + std::to_string(cfg.state_ttl_ms) + ", '" + std::to_string(cfg.dedup_ttl_ms)
         + "', " + std::to_string(cfg.max_shoots) + ", " + std::to_string(cfg.field_idle_ms)
         + "\n" + scripts::publish_body;
}

namespace {

/// A message as the scripts keep it: "terminal|rank|at|until|now|frame".
std::string stored_value(const server::publish_request& req) {
  auto& s = req.state;
  auto until = s.terminal && s.linger_ms > 0 ? req.now + s.linger_ms : 0;
  std::string v;
  v.reserve(req.frame.size() + 64);
  v += s.terminal ? "1|" : "0|";
  v += std::to_string(s.rank);
  v += '|';
  v += std::to_string(s.at);
  v += '|';
  v += std::to_string(until);
  v += '|';
  v += std::to_string(req.now);
  v += '|';
  v += req.frame;
  return v;
}

/// The frame of a stored value; `bare`: a frame alone is one too (the
/// stream entries of older nodes).
std::optional<std::string_view> frame_of_value(std::string_view v, int64_t* until,
                                               int64_t* updated, bool bare = false) {
  if (bare && !v.empty() && v.front() == '{') {
    *until = *updated = 0;
    return v;
  }
  size_t bar[5];
  size_t from = 0;
  for (auto& x : bar) {
    x = v.find('|', from);
    if (x == std::string_view::npos)
      return std::nullopt;
    from = x + 1;
  }
  auto u = to_int<int64_t>(v.substr(bar[2] + 1, bar[3] - bar[2] - 1));
  auto d = to_int<int64_t>(v.substr(bar[3] + 1, bar[4] - bar[3] - 1));
  if (!u || !d)
    return std::nullopt;
  *until = *u;
  *updated = *d;
  return v.substr(bar[4] + 1);
}

} // namespace

publish_batch publish_call(const std::string& prefix,
                           const std::vector<const server::publish_request*>& batch,
                           const std::string& run, const std::string& new_epoch) {
  // Grouped by user, each user's publishes in their order.
  std::vector<size_t> order(batch.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return batch[x]->user < batch[y]->user; });
  publish_batch pb;
  auto& c = pb.call;
  c.args.reserve(4 + batch.size() * (1 + scripts::publish_values));
  c.args.push_back(run);
  c.args.push_back(new_epoch);
  c.args.push_back(batch.empty() ? std::string{} : batch.front()->origin);
  int64_t latest = 0;
  for (auto* req : batch)
    latest = std::max(latest, req->now);
  c.args.push_back(std::to_string(latest));
  for (size_t i = 0; i < order.size();) {
    auto& user = batch[order[i]]->user;
    auto j = i;
    while (j < order.size() && batch[order[j]]->user == user)
      ++j;
    c.keys.push_back(prefix + "{" + user + "}:");
    c.args.push_back(std::to_string(j - i));
    for (; i < j; ++i) {
      auto* req = batch[order[i]];
      const char* kind = req->control    ? "x"
                         : req->numbered ? "n"
                         : !req->presence ? "u"
                         : req->present  ? "p"
                                         : "q";
      c.args.emplace_back(kind);
      c.args.push_back(stored_value(*req));
      c.args.push_back(req->dedup_key);
      c.args.push_back(req->state.field);
      c.args.emplace_back(req->state.terminal ? "1" : "0");
      c.args.push_back(std::to_string(req->state.rank));
      c.args.push_back(std::to_string(req->state.at));
      c.args.push_back(std::to_string(req->now));
      c.args.push_back(req->presence ? req->presence->device : std::string{});
      c.args.push_back(req->presence ? std::to_string(req->presence->connected_at) + "|"
                                         + std::to_string(req->presence->protocol)
                                     : "0");
    }
  }
  pb.order = std::move(order);
  return pb;
}

script_call head_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& alive_prefix,
                      int64_t now, const redis_broker_config& cfg) {
  return {{k.state, k.stream, k.presence},
          {run, new_epoch, alive_prefix, std::to_string(cfg.state_ttl_ms),
           std::to_string(cfg.history_size), std::to_string(now),
           std::to_string(cfg.history_ttl_ms)}};
}

script_call read_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& epoch,
                      uint64_t since, uint64_t upto, int64_t now,
                      const redis_broker_config& cfg) {
  auto to = upto == std::numeric_limits<uint64_t>::max() ? std::string{"+"}
                                                         : std::to_string(upto);
  return {{k.state, k.stream},
          {run, new_epoch, epoch, std::to_string(since), to, std::to_string(cfg.state_ttl_ms),
           std::to_string(cfg.history_size), std::to_string(now),
           std::to_string(cfg.history_ttl_ms)}};
}

bool refused_before_writing(const redis_value& v) {
  if (v.kind != redis_value::error)
    return false;
  // Redis refuses these before a command runs, or at a script's first
  // write, which the publish script makes before any other (OOM: its state
  // at the script's start decides for every write of the script).
  static constexpr std::string_view codes[]
    = {"OOM ",        "READONLY ", "BUSY ",     "NOSCRIPT ", "LOADING ",
       "MASTERDOWN ", "NOAUTH ",   "NOPERM ",   "WRONGPASS ", "MISCONF ",
       "NOREPLICAS ", "EXECABORT ", "CLUSTERDOWN ", "TRYAGAIN "};
  for (auto c : codes)
    if (v.str.compare(0, c.size(), c) == 0)
      return true;
  return false;
}

caf::expected<std::vector<publish_outcome>> parse_publish(const redis_value& v, size_t n) {
  if (v.is_error()) {
    auto why = "publish: " + v.str;
    if (v.kind == redis_value::unsent || refused_before_writing(v))
      return server::make_error(broker_errc::unavailable, std::move(why));
    return server::make_error(broker_errc::outcome_unknown, std::move(why));
  }
  // The script ran and answered something else: what it wrote is unknown.
  auto unknown = [](const char* what) {
    return server::make_error(broker_errc::outcome_unknown, what);
  };
  if (!array_of(v, 3 * n))
    return unknown("publish: not {seq, epoch, duplicate} per publish");
  std::vector<publish_outcome> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto& seq = v.elements[3 * i];
    auto& epoch = v.elements[3 * i + 1];
    auto& dup = v.elements[3 * i + 2];
    if (seq.kind != redis_value::integer || seq.number < 0
        || epoch.kind != redis_value::string || epoch.str.empty()
        || dup.kind != redis_value::integer || dup.number < -1 || dup.number > 1)
      return unknown("publish: not {seq, epoch, duplicate}");
    if (dup.number == -1) // refused by the script, nothing of it written: epoch says why
      out.emplace_back(server::make_error(broker_errc::unavailable, "publish refused: " + epoch.str));
    else
      out.emplace_back(server::publish_receipt{static_cast<uint64_t>(seq.number), epoch.str,
                                               dup.number == 1});
  }
  return out;
}

caf::expected<server::stream_head> parse_head(const redis_value& v) {
  if (v.is_error())
    return failed("head", v);
  if (!array_of(v, 5) || v.elements[0].kind != redis_value::string
      || v.elements[4].kind != redis_value::integer || v.elements[4].number < 0
      || v.elements[1].kind != redis_value::integer || v.elements[1].number < 0
      || v.elements[2].kind != redis_value::array || v.elements[2].elements.size() % 2
      || v.elements[3].kind != redis_value::array || v.elements[3].elements.size() % 2)
    return bad("head: not {epoch, top, state, presence}");
  server::stream_head h;
  h.epoch = v.elements[0].str;
  h.top = static_cast<uint64_t>(v.elements[1].number);
  h.first = static_cast<uint64_t>(v.elements[4].number);
  auto& st = v.elements[2].elements;
  for (size_t i = 0; i + 1 < st.size(); i += 2) {
    // field -> "terminal|rank|at|until|updated|frame"
    if (st[i].kind != redis_value::string || st[i + 1].kind != redis_value::string)
      return bad("head: a state entry is not field -> value");
    int64_t until = 0, updated = 0;
    auto frame = frame_of_value(st[i + 1].str, &until, &updated);
    if (!frame || !is_frame(*frame))
      return bad("head: a state value is not terminal|rank|at|until|updated|frame");
    h.state.push_back({st[i].str, std::string{*frame}, until, updated});
  }
  auto& p = v.elements[3].elements;
  for (size_t i = 0; i + 1 < p.size(); i += 2) {
    auto bar = p[i].str.find('|');
    auto at = presence_value(p[i + 1].str);
    if (bar == std::string::npos || !at)
      return bad("head: a presence entry is not node|device -> time|protocol");
    h.devices.push_back(
      {p[i].str.substr(0, bar), p[i].str.substr(bar + 1), at->first, at->second});
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
  r.messages.reserve(v.elements[2].elements.size());
  auto key = server::make_key(user, r.epoch);
  for (auto& e : v.elements[2].elements) {
    // [id, [field, value]]
    if (!array_of(e, 2) || !array_of(e.elements[1], 2))
      return bad("read: an entry is not [id, [field, value]]");
    auto& id = e.elements[0].str;
    auto seq = to_int<uint64_t>(std::string_view{id}.substr(0, id.find('-')));
    int64_t until = 0, updated = 0;
    auto frame = frame_of_value(e.elements[1].elements[1].str, &until, &updated, true);
    if (!seq || *seq == 0 || !frame || !is_frame(*frame))
      return bad("read: an entry's id or value is malformed");
    r.messages.push_back(server::make_message(key, *seq, {}, std::string{*frame}));
  }
  return r;
}

namespace {

/// One record: "<seq> <epoch> <origin> <on> <at> <field>\x1f<device>\x1f<value>".
/// `key`: the last record's (user and epoch), reused when the epoch is the same.
server::message_ptr parse_record(const std::string& user, std::string_view r,
                                 server::key_ptr& key) {
  std::string_view part[5];
  size_t from = 0;
  for (auto& p : part) {
    auto sp = r.find(' ', from);
    if (sp == std::string_view::npos)
      return nullptr;
    p = r.substr(from, sp - from);
    from = sp + 1;
  }
  auto f_end = r.find('\x1f', from);
  auto d_end = f_end == std::string_view::npos ? f_end : r.find('\x1f', f_end + 1);
  if (d_end == std::string_view::npos)
    return nullptr;
  auto seq = to_int<uint64_t>(part[0]);
  auto field = r.substr(from, f_end - from);
  auto device = r.substr(f_end + 1, d_end - f_end - 1);
  int64_t until = 0, updated = 0;
  auto frame = frame_of_value(r.substr(d_end + 1), &until, &updated);
  bool control = part[3] == "x";
  if (!seq || part[1].empty() || part[2].empty()
      || (part[3] != "0" && part[3] != "1" && !control) || !frame || !is_frame(*frame))
    return nullptr;
  server::state_change change;
  if (!field.empty())
    change = {std::string{field}, until, updated};
  std::optional<server::presence_entry> presence;
  if (!device.empty()) {
    auto at = presence_value(part[4]);
    if (!at)
      return nullptr;
    presence = server::presence_entry{std::string{part[2]}, std::string{device}, at->first,
                                      at->second};
  }
  if (!key || key->epoch != part[1])
    key = server::make_key(user, std::string{part[1]});
  return server::make_message(key, *seq, std::string{part[2]}, std::string{*frame},
                              std::move(change), std::move(presence), part[3] == "1", control);
}

} // namespace

std::vector<server::message_ptr> parse_channel_message(const std::string& user,
                                                       std::string_view payload) {
  // Records separated by \x1e.
  std::vector<server::message_ptr> out;
  server::key_ptr key;
  for (;;) {
    auto end = payload.find('\x1e');
    auto m = parse_record(user, payload.substr(0, end), key);
    if (!m)
      return {};
    out.push_back(std::move(m));
    if (end == std::string_view::npos)
      return out;
    payload.remove_prefix(end + 1);
  }
}

namespace {

/// The value of one `key:value` line of INFO's text.
std::optional<std::string> info_field(const std::string& info, std::string_view key) {
  for (size_t at = 0; (at = info.find(key, at)) != std::string::npos; at += key.size()) {
    if (at != 0 && info[at - 1] != '\n')
      continue; // the key inside another line
    auto from = at + key.size();
    auto end = info.find_first_of("\r\n", from);
    auto value = info.substr(from, end == std::string::npos ? std::string::npos : end - from);
    if (value.empty())
      return std::nullopt;
    return value;
  }
  return std::nullopt;
}

} // namespace

std::optional<std::string> mastership_of(const std::string& info) {
  auto run = info_field(info, "run_id:");
  auto replid = info_field(info, "master_replid:");
  if (!run || !replid)
    return std::nullopt;
  return *run + ":" + *replid;
}

bool is_replica(const std::string& info) {
  auto role = info_field(info, "role:");
  return role && *role != "master";
}

std::optional<std::string> too_old_for_scripts(const std::string& info) {
  auto v = info_field(info, "redis_version:");
  if (!v)
    return std::string{"unknown"};
  int major = 0;
  auto r = std::from_chars(v->data(), v->data() + v->size(), major);
  if (r.ec != std::errc{} || major < 7)
    return v;
  return std::nullopt;
}

} // namespace kullsync::broker

#pragma once

// Private to the broker: the Lua scripts that make each step atomic in
// Redis. They are the only other implementation of a user's stream besides
// the stream core (actors/server/src/stream/): every rule here mirrors one
// there, and one table of cases runs against both
// (tests/unit/stream_cases_test.cpp).
//
// Per user (in braces, one slot): `m` meta hash (epoch, run, seq, and `x`:
// until when the keys' lifetimes need no refresh), `s` stream (entry id =
// seq), `st` state hash (field -> "terminal|rank|at|until|updated|frame"),
// `t` fields lingering until (zset), `u` shoots by last update (zset), `p`
// presence hash ("node|device" -> connected at), `d:<key>` dedup answers,
// `c` the pub/sub channel.
//
// An epoch belongs to the Redis run that made it: a restart without data or
// a failover to a replica (another run id) starts a new epoch at the next
// touch, and the old stream goes, so positions are never reused within an
// epoch. Message on the channel (the state change and presence travel with
// it, so no node decodes the frame):
//   "<seq> <epoch> <origin> <until> <updated> <flen> <dlen> <on> <at> <field><device><frame>"

namespace kullsync::broker::scripts {

// Opens the stream: its epoch, a new one if missing or of another run
// (ARGV[1] run id, ARGV[2] the epoch if new). `fresh`: it was made now.
#define KULLSYNC_OPEN_STREAM                                                     \
  "local meta = redis.call('HMGET', KEYS[1], 'epoch', 'run', 'x')\n"             \
  "local epoch = meta[1]\n"                                                      \
  "local fresh = false\n"                                                        \
  "if not (epoch and meta[2] == ARGV[1]) then\n"                                 \
  "  epoch = ARGV[2]\n"                                                          \
  "  redis.call('HSET', KEYS[1], 'epoch', epoch, 'run', ARGV[1], 'x', '0')\n"    \
  "  redis.call('DEL', KEYS[2])\n"                                               \
  "  fresh = true\n"                                                             \
  "end\n"

/// KEYS: 1 meta, 2 stream, 3 state, 4 terms, 5 updates, 6 presence, 7 dedup
/// (meta again if none).
/// ARGV: 1 run, 2 new epoch, 3 numbered (0/1), 4 channel, 5 frame, 6 origin,
/// 7 maxlen, 8 stream ttl ms, 9 state ttl ms, 10 dedup key ('' none),
/// 11 dedup ttl ms, 12 state field ('' none), 13 terminal (0/1), 14 rank,
/// 15 at, 16 now, 17 linger ms, 18 presence (0 none, 1 on, 2 off),
/// 19 presence node, 20 presence device, 21 connected at, 22 max shoots
/// (0: no cap), 23 shoot idle ms (0: never).
/// Returns {seq, epoch, duplicate (0/1)}.
inline constexpr const char* publish =
  KULLSYNC_OPEN_STREAM
  "if ARGV[10] ~= '' then\n"
  "  local seen = redis.call('GET', KEYS[7])\n"
  "  if seen then\n"
  "    local s, e = string.match(seen, '^(%d+):(.*)$')\n"
  "    if s and e == epoch then return {tonumber(s), e, 1} end\n"
  "  end\n"
  "end\n"
  "local now = tonumber(ARGV[16])\n"
  "local function fmt(n) return string.format('%d', n) end\n"
  "local dev, on, at = '', '0', '0'\n"
  "if ARGV[18] ~= '0' then\n"
  "  local pf = ARGV[19] .. '|' .. ARGV[20]\n"
  "  if ARGV[18] == '1' then redis.call('HSET', KEYS[6], pf, ARGV[21]); on = '1'\n"
  "  else redis.call('HDEL', KEYS[6], pf) end\n"
  "  redis.call('PEXPIRE', KEYS[6], ARGV[9])\n"
  "  dev, at = ARGV[20], ARGV[21]\n"
  "end\n"
  // A field goes from the state, its indexes with it.
  "local function drop(f)\n"
  "  redis.call('HDEL', KEYS[3], f); redis.call('ZREM', KEYS[4], f); redis.call('ZREM', KEYS[5], f)\n"
  "end\n"
  // Room for a new field: lingered out first, then idle shoots, then the
  // shoots updated least recently past the cap (state_table::make_room).
  // Only shoots are in `u`: the credits never go.
  "local function make_room(shoot)\n"
  "  for _, f in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', fmt(now))) do drop(f) end\n"
  "  local idle = tonumber(ARGV[23])\n"
  "  if idle > 0 then\n"
  "    for _, f in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. fmt(now - idle))) do drop(f) end\n"
  "  end\n"
  "  local max = tonumber(ARGV[22])\n"
  "  if shoot and max > 0 then\n"
  "    local n = redis.call('ZCARD', KEYS[5])\n"
  "    if n >= max then\n"
  "      for _, f in ipairs(redis.call('ZRANGE', KEYS[5], 0, n - max)) do drop(f) end\n"
  "    end\n"
  "  end\n"
  "end\n"
  "local seq, field, untl, updated = 0, '', 0, 0\n"
  "if ARGV[3] == '1' then\n"
  "  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
  "  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[7], seq .. '-0', 'f', ARGV[5])\n"
  "  local f = ARGV[12]\n"
  "  if f ~= '' then\n"
  // The state rule (state_table::put).
  "    local cur = redis.call('HGET', KEYS[3], f)\n"
  "    local exists, replace, was_terminal = false, true, false\n"
  "    if cur then\n"
  "      local t, r, a, u = string.match(cur, '^(%d)|(-?%d+)|(-?%d+)|(-?%d+)|')\n"
  "      local cu = tonumber(u)\n"
  "      if cu ~= 0 and cu <= now then\n"
  "        drop(f)\n"
  "      else\n"
  "        exists, was_terminal = true, t == '1'\n"
  "        if ARGV[13] == '0' and ARGV[14] ~= '-1' then\n"
  "          if was_terminal then\n"
  "            local at_new, at_was = tonumber(ARGV[15]), tonumber(a)\n"
  "            replace = not (at_new ~= 0 and at_was ~= 0 and at_new < at_was)\n"
  "          else\n"
  "            replace = tonumber(ARGV[14]) >= tonumber(r)\n"
  "          end\n"
  "        end\n"
  "      end\n"
  "    end\n"
  "    if replace then\n"
  "      local shoot = string.sub(f, 1, 6) == 'shoot:'\n"
  "      if not exists then make_room(shoot) end\n"
  "      if ARGV[13] == '1' and tonumber(ARGV[17]) > 0 then untl = now + tonumber(ARGV[17]) end\n"
  "      redis.call('HSET', KEYS[3], f, ARGV[13] .. '|' .. ARGV[14] .. '|' .. ARGV[15] .. '|'\n"
  "                 .. fmt(untl) .. '|' .. ARGV[16] .. '|' .. ARGV[5])\n"
  "      if shoot then redis.call('ZADD', KEYS[5], ARGV[16], f) end\n"
  "      if untl > 0 then redis.call('ZADD', KEYS[4], fmt(untl), f)\n"
  "      elseif was_terminal then redis.call('ZREM', KEYS[4], f) end\n"
  // A new field may have made its keys: they get a lifetime now.
  "      if not exists then\n"
  "        redis.call('PEXPIRE', KEYS[3], ARGV[9]); redis.call('PEXPIRE', KEYS[5], ARGV[9])\n"
  "        if untl > 0 then redis.call('PEXPIRE', KEYS[4], ARGV[9]) end\n"
  "      end\n"
  "      field, updated = f, now\n"
  "    end\n"
  "  end\n"
  "end\n"
  "redis.call('PUBLISH', ARGV[4], fmt(seq) .. ' ' .. epoch .. ' ' .. ARGV[6] .. ' ' .. fmt(untl)\n"
  "           .. ' ' .. fmt(updated) .. ' ' .. #field .. ' ' .. #dev .. ' ' .. on .. ' ' .. at\n"
  "           .. ' ' .. field .. dev .. ARGV[5])\n"
  "if ARGV[10] ~= '' then\n"
  "  redis.call('SET', KEYS[7], fmt(seq) .. ':' .. epoch, 'PX', ARGV[11])\n"
  "end\n"
  // Lifetimes: refreshed at most once per stream lifetime (ARGV[8]), each
  // set so that the stream outlives its last write by that much.
  "if fresh or now >= tonumber(meta[3] or '0') then\n"
  "  redis.call('PEXPIRE', KEYS[1], ARGV[9])\n"
  "  redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[8]))\n"
  "  redis.call('PEXPIRE', KEYS[3], ARGV[9])\n"
  "  redis.call('PEXPIRE', KEYS[4], ARGV[9])\n"
  "  redis.call('PEXPIRE', KEYS[5], ARGV[9])\n"
  "  redis.call('PEXPIRE', KEYS[6], ARGV[9])\n"
  "  redis.call('HSET', KEYS[1], 'x', fmt(now + tonumber(ARGV[8])))\n"
  "end\n"
  "return {seq, epoch, 0}\n";

/// KEYS: 1 meta, 2 stream, 3 state, 4 presence. ARGV: 1 run, 2 new epoch,
/// 3 the alive keys' prefix, 4 state ttl ms. Returns {epoch, top, {state
/// field, value, ...}, {presence field, value, ...} of live nodes}.
inline constexpr const char* head =
  KULLSYNC_OPEN_STREAM
  "if fresh then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end\n"
  "local top = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
  "local state = redis.call('HGETALL', KEYS[3])\n"
  "local all = redis.call('HGETALL', KEYS[4])\n"
  "local live = {}\n"
  "for i = 1, #all, 2 do\n"
  "  local node = string.match(all[i], '^(.-)|')\n"
  "  if node and redis.call('EXISTS', ARGV[3] .. node) == 1 then\n"
  "    live[#live + 1] = all[i]\n"
  "    live[#live + 1] = all[i + 1]\n"
  "  end\n"
  "end\n"
  "return {epoch, top, state, live}\n";

/// KEYS: 1 meta, 2 stream. ARGV: 1 run, 2 new epoch, 3 epoch, 4 since,
/// 5 upto ('+': the top), 6 state ttl ms. Returns {epoch, complete (0/1),
/// {entries}}: all of (since, upto] or nothing.
inline constexpr const char* read =
  KULLSYNC_OPEN_STREAM
  "if fresh then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end\n"
  "if epoch ~= ARGV[3] then return {epoch, 0, {}} end\n"
  "local top = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
  "local since = tonumber(ARGV[4])\n"
  "if since > top then return {epoch, 0, {}} end\n"
  "local upto = top\n"
  "if ARGV[5] ~= '+' and tonumber(ARGV[5]) < top then upto = tonumber(ARGV[5]) end\n"
  "if since >= upto then return {epoch, 1, {}} end\n"
  "local first = string.format('%d', since + 1) .. '-0'\n"
  "local e = redis.call('XRANGE', KEYS[2], first, string.format('%d', upto) .. '-0')\n"
  "if #e == 0 or e[1][1] ~= first then return {epoch, 0, {}} end\n"
  "return {epoch, 1, e}\n";

#undef KULLSYNC_OPEN_STREAM

} // namespace kullsync::broker::scripts

#pragma once

// Private to the broker: the Lua scripts that make each step atomic in
// Redis. Per user (in braces, one slot): `m` meta hash (epoch, run, seq),
// `s` stream (entry id = seq), `st` state hash, `t` finished shoots by
// expiry, `p` presence hash ("node|device" -> connected at), `d:<key>`
// dedup answers, `c` the pub/sub channel.
//
// An epoch belongs to the Redis run that made it: a restart without data
// or a failover to a replica (another run id) starts a new epoch at the
// next touch, and the old stream goes, so positions are never reused
// within an epoch. Message on the channel: "<seq> <epoch> <origin> <frame>".

namespace kullsync::broker::scripts {

// Opens the stream: its epoch, a new one if missing or of another run.
// KEYS[1] meta, KEYS[2] stream; ARGV[1] run id, ARGV[2] epoch if new.
#define KULLSYNC_OPEN_STREAM                                                     \
  "local function open()\n"                                                      \
  "  local m = redis.call('HMGET', KEYS[1], 'epoch', 'run')\n"                   \
  "  if m[1] and m[2] == ARGV[1] then return m[1] end\n"                         \
  "  redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'run', ARGV[1])\n"            \
  "  redis.call('DEL', KEYS[2])\n"                                               \
  "  return ARGV[2]\n"                                                           \
  "end\n"                                                                        \
  "local epoch = open()\n"

/// KEYS: meta, stream, state, terms, presence, dedup (meta again if none).
/// ARGV: 1 run, 2 new epoch, 3 numbered (0/1), 4 channel, 5 frame,
/// 6 origin, 7 maxlen, 8 stream ttl ms, 9 state ttl ms, 10 dedup key ('' none),
/// 11 dedup ttl ms, 12 state field ('' none), 13 terminal (0/1), 14 rank,
/// 15 at, 16 now, 17 linger ms, 18 presence (0 none, 1 on, 2 off),
/// 19 presence field, 20 presence value.
/// Returns {seq, epoch, duplicate (0/1)}.
inline constexpr const char* publish =
  KULLSYNC_OPEN_STREAM
  "if ARGV[10] ~= '' then\n"
  "  local seen = redis.call('GET', KEYS[6])\n"
  "  if seen then\n"
  "    local s, e = string.match(seen, '^(%d+):(.*)$')\n"
  "    if s then return {tonumber(s), e, 1} end\n"
  "  end\n"
  "end\n"
  "if ARGV[18] == '1' then redis.call('HSET', KEYS[5], ARGV[19], ARGV[20])\n"
  "elseif ARGV[18] == '2' then redis.call('HDEL', KEYS[5], ARGV[19]) end\n"
  "if ARGV[18] ~= '0' then redis.call('PEXPIRE', KEYS[5], ARGV[9]) end\n"
  "local seq = 0\n"
  "if ARGV[3] == '1' then\n"
  "  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)\n"
  "  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[7], seq .. '-0', 'f', ARGV[5])\n"
  "  redis.call('PEXPIRE', KEYS[2], ARGV[8])\n"
  "  if ARGV[12] ~= '' then\n"
  "    local now = tonumber(ARGV[16])\n"
  "    local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)\n"
  "    for _, f in ipairs(gone) do redis.call('HDEL', KEYS[3], f) end\n"
  "    if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end\n"
  "    local cur = redis.call('HGET', KEYS[3], ARGV[12])\n"
  "    local replace = true\n"
  "    if cur and ARGV[13] == '0' and ARGV[14] ~= '-1' then\n"
  "      local t, r, a = string.match(cur, '^(%d)|(-?%d+)|(-?%d+)|')\n"
  "      if t == '1' then\n"
  "        local at, was = tonumber(ARGV[15]), tonumber(a)\n"
  "        replace = not (at ~= 0 and was ~= 0 and at < was)\n"
  "      elseif r then\n"
  "        replace = tonumber(ARGV[14]) >= tonumber(r)\n"
  "      end\n"
  "    end\n"
  "    if replace then\n"
  "      local untl = 0\n"
  "      if ARGV[13] == '1' and tonumber(ARGV[17]) > 0 then untl = now + tonumber(ARGV[17]) end\n"
  "      redis.call('HSET', KEYS[3], ARGV[12], ARGV[13] .. '|' .. ARGV[14] .. '|' .. ARGV[15]\n"
  "                 .. '|' .. string.format('%d', untl) .. '|' .. ARGV[5])\n"
  "      if untl > 0 then redis.call('ZADD', KEYS[4], untl, ARGV[12])\n"
  "      else redis.call('ZREM', KEYS[4], ARGV[12]) end\n"
  "    end\n"
  "    redis.call('PEXPIRE', KEYS[3], ARGV[9])\n"
  "    redis.call('PEXPIRE', KEYS[4], ARGV[9])\n"
  "  end\n"
  "end\n"
  "redis.call('PEXPIRE', KEYS[1], ARGV[9])\n"
  "redis.call('PUBLISH', ARGV[4], seq .. ' ' .. epoch .. ' ' .. ARGV[6] .. ' ' .. ARGV[5])\n"
  "if ARGV[10] ~= '' then\n"
  "  redis.call('SET', KEYS[6], seq .. ':' .. epoch, 'PX', ARGV[11])\n"
  "end\n"
  "return {seq, epoch, 0}\n";

/// KEYS: meta, stream, state, presence. ARGV: 1 run, 2 new epoch, 3 the
/// alive keys' prefix. Returns {epoch, top, {state values}, {presence
/// field, value, ...} of live nodes}.
inline constexpr const char* head =
  KULLSYNC_OPEN_STREAM
  "local top = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')\n"
  "local state = redis.call('HVALS', KEYS[3])\n"
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

/// KEYS: meta, stream. ARGV: 1 run, 2 new epoch, 3 epoch, 4 since, 5 upto
/// ('+': the top). Returns {epoch, complete (0/1), {entries}}: all of
/// (since, upto] or nothing.
inline constexpr const char* read =
  KULLSYNC_OPEN_STREAM
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

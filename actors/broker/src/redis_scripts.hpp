#pragma once

// Private to the broker: the Lua scripts that make each step atomic in
// Redis. They are the only other implementation of a user's stream besides
// the stream core (actors/server/src/stream/): every rule here mirrors one
// there, and one table of cases runs against both
// (tests/unit/stream_cases_test.cpp).
//
// Per user, under the user's key prefix "<prefix>{<user>}:" (one slot):
// - `st`: one hash for the stream's meta ("#epoch", "#run", "#seq", and "#x":
//   until when the keys' lifetimes need no refresh) and its state (field ->
//   "terminal|rank|at|until|updated|frame"), so that one HMGET reads both
//   and one HSET writes both;
// - `s`: the stream (entry id = seq, field f = "terminal|rank|at|until|
//   updated|frame", the message as the state keeps it);
// - `p`: presence ("node|device" -> "connected at|protocol");
// - `d:<key>`: a dedup answer ("seq:epoch"), set and read in one SET NX GET;
// - `c`: the pub/sub channel.
//
// Every call to Redis from a script costs more than its work (about 2 µs
// here): the publish script does per user what it can once per batch.
//
// An epoch belongs to the Redis mastership that made it ("#run": run_id and
// master_replid, redis_codec.hpp's mastership_of): a restart, a failover
// to a replica, or a demoted master promoted again starts a new epoch at
// the next touch, and the old stream goes, so positions are never reused
// within an epoch. A channel message is one or more records, separated by \x1e, each
//   "<seq> <epoch> <origin> <on> <at> <field>\x1f<device>\x1f<value>"
// where <on> is 1 (a device arrived), 0 (left, or no presence) or x (an
// order to the nodes, never sent to a device), <at> "connected at|protocol"
// and <value> "terminal|rank|at|until|updated|frame" (the state change and
// presence travel with it: no node decodes a frame).
//
// A node sends each message as that value, made once: a script builds no
// string that holds a frame but the channel message (Redis's Lua hashes
// every byte of every string it makes, so each copy of a frame costs).
// Neither separator can occur in a record: ids have no control characters
// (msg::valid_id) and JSON text none outside its strings, which escape them.
// Numbers become text once each: in Lua that is a printf.

#include <cstddef>

namespace kullsync::broker::scripts {

/// Publishes a batch: what the hubs of this node published in one pass, as
/// one script call, grouped by user (each user's publishes in order). The
/// node's limits are constants of the script (publish_script() puts
/// MAXLEN, STREAM_TTL, STATE_TTL, DEDUP_TTL, MAX_SHOOTS, IDLE before it).
/// KEYS: per user, its key prefix.
/// ARGV: 1 run, 2 new epoch, 3 origin, 4 the latest `now` of the batch;
/// then per user its count of publishes, then per publish `publish_values`
/// values: kind ('n' numbered, 'u' not numbered, 'p' presence on, 'q'
/// presence off, 'x' an order to the nodes), value
/// ("terminal|rank|at|until|now|frame"), dedup key ('' none), state field
/// ('' none), terminal (0/1), rank, at, now, presence device,
/// "connected at|protocol".
/// Returns {seq, epoch, duplicate (0/1)} per publish, users in KEYS order;
/// {0, why, -1} for a publish refused (nothing of it written): a user's
/// keys of another type, refused from the first of that user's publishes
/// on, while the batch's other users are published.
inline constexpr const char* publish_body = R"lua(
local run, new_epoch, origin, last_now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function fmt(n) return string.format('%d', n) end

-- Bytewise order (Lua's own string order follows the locale).
local function before(x, y)
  if x.upd ~= y.upd then return x.upd < y.upd end
  local n = math.min(#x.f, #y.f)
  for i = 1, n do
    local a, b = string.byte(x.f, i), string.byte(y.f, i)
    if a ~= b then return a < b end
  end
  return #x.f < #y.f
end

-- Room for a new field at `now` (state_table::make_room): lingered-out
-- values first, then shoots idle for IDLE, then, for a new shoot past
-- MAX_SHOOTS, the shoots updated least recently. Returns what went.
local function make_room(st, shoot, now)
  local all = redis.call('HGETALL', st)
  local gone, shoots = {}, {}
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, 1) ~= '#' then
      local u, upd = string.match(all[i + 1], '^%d|%-?%d+|%-?%d+|(%-?%d+)|(%-?%d+)|')
      u, upd = tonumber(u), tonumber(upd)
      local is_shoot = string.sub(f, 1, 6) == 'shoot:'
      if not (u and upd) then gone[#gone + 1] = f -- not a state value: no one's
      elseif u ~= 0 and u <= now then gone[#gone + 1] = f
      elseif is_shoot and IDLE > 0 and upd < now - IDLE then gone[#gone + 1] = f
      elseif is_shoot then shoots[#shoots + 1] = {f = f, upd = upd} end
    end
  end
  if shoot and MAX_SHOOTS > 0 and #shoots >= MAX_SHOOTS then
    table.sort(shoots, before)
    for i = 1, #shoots - MAX_SHOOTS + 1 do gone[#gone + 1] = shoots[i].f end
  end
  -- In parts: Lua's unpack stops near 8,000 values, and a table past its
  -- idle time may lose more shoots than that at once.
  for i = 1, #gone, 1000 do
    redis.call('HDEL', st, unpack(gone, i, math.min(i + 999, #gone)))
  end
  return gone
end

local out = {}
-- A publish refused, and with it the rest of its user's group (so that the
-- user's order holds): nothing of it was written, and the node says so.
local function refuse(n, why)
  for _ = 1, n do out[#out + 1] = 0; out[#out + 1] = why; out[#out + 1] = -1 end
end

-- One user's publishes. Every write that another's data can make fail (a
-- key of another type, a stream whose top is past #seq) goes through
-- redis.pcall before the group's own writes, so a bad user never fails
-- the users batched with it, and a refused publish leaves no dedup answer
-- behind (a retry with its key would be told it was published).
local function publish_group(b, a, k)
  local st, s = b .. 'st', b .. 's'
  -- What the group reads, in one call: the meta with the group's fields.
  local fields, fseen = {}, {}
  for j = 0, k - 1 do
    local f = ARGV[a + j * 10 + 3]
    if f ~= '' and not fseen[f] then fseen[f] = true; fields[#fields + 1] = f end
  end
  local got = redis.pcall('HMGET', st, '#epoch', '#run', '#x', '#seq', unpack(fields))
  if got.err then return refuse(k, got.err) end
  local epoch, fresh = got[1], false
  local seq = tonumber(got[4] or '0') or 0
  if not (epoch and got[2] == run) then
    epoch, fresh = new_epoch, true
    redis.call('DEL', s)
  end
  local cur = {}
  for i, f in ipairs(fields) do cur[f] = got[4 + i] or false end
  local dirty, records = {}, {}
  local function write_dirty()
    local hs = {}
    for f, v in pairs(dirty) do hs[#hs + 1] = f; hs[#hs + 1] = v end
    if #hs > 0 then redis.call('HSET', st, unpack(hs)) end
    dirty = {}
  end
  for j = 1, k do
    local kind, value, dedup, f = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
    local now = ARGV[a + 7]
    local answered, failed, dk = false, nil, nil
    -- A key answers within its epoch only; one it does not answer takes
    -- the position this message is about to get, in the same call.
    if dedup ~= '' then
      dk = b .. 'd:' .. dedup
      local v = (kind == 'n' and fmt(seq + 1) or '0') .. ':' .. epoch
      local old = redis.pcall('SET', dk, v, 'NX', 'GET', 'PX', DEDUP_TTL)
      if type(old) == 'table' and old.err then
        failed, dk = old.err, nil
      elseif old then
        local ds, de = string.match(old, '^(%d+):(.*)$')
        if ds and de == epoch then
          out[#out + 1] = tonumber(ds); out[#out + 1] = de; out[#out + 1] = 1
          answered = true
        else
          redis.call('SET', dk, v, 'PX', DEDUP_TTL)
        end
      end
    end
    local dev, on, at = '', '0', '0'
    if not answered and not failed and (kind == 'p' or kind == 'q') then
      dev, at = ARGV[a + 8], ARGV[a + 9]
      local pf = origin .. '|' .. dev
      local r
      if kind == 'p' then r = redis.pcall('HSET', b .. 'p', pf, at); on = '1'
      else r = redis.pcall('HDEL', b .. 'p', pf) end
      if type(r) == 'table' and r.err then failed = r.err
      else redis.call('PEXPIRE', b .. 'p', STATE_TTL) end
    end
    local pos, ptext, field = 0, '0', ''
    if not answered and not failed and kind == 'n' then
      -- Trimmed roughly (whole nodes: cheap); what a read may return is
      -- bounded exactly by MAXLEN in the read script.
      local r = redis.pcall('XADD', s, 'MAXLEN', '~', MAXLEN, fmt(seq + 1) .. '-0', 'f', value)
      if type(r) == 'table' and r.err and string.find(r.err, 'equal or smaller', 1, true) then
        -- The stream has numbered past #seq (what it took is its own, even
        -- entries deleted since): numbered after its last id.
        local info, top = redis.call('XINFO', 'STREAM', s), nil
        for i = 1, #info, 2 do
          if info[i] == 'last-generated-id' then
            top = tonumber(string.match(info[i + 1], '^(%d+)'))
          end
        end
        if top and top > seq then
          seq = top
          r = redis.pcall('XADD', s, 'MAXLEN', '~', MAXLEN, fmt(seq + 1) .. '-0', 'f', value)
          if dk and not (type(r) == 'table' and r.err) then
            redis.call('SET', dk, fmt(seq + 1) .. ':' .. epoch, 'PX', DEDUP_TTL)
          end
        end
      end
      if type(r) == 'table' and r.err then failed = r.err end
    end
    if failed then
      if dk then redis.call('DEL', dk) end
      refuse(k - j + 1, failed)
      break
    end
    if not answered then
      if kind == 'x' then on = 'x' end
      if kind == 'n' then
        seq = seq + 1
        pos, ptext = seq, fmt(seq)
        if f ~= '' then
          -- The state rule (state_table::put).
          local n = tonumber(now)
          local terminal, rank = ARGV[a + 4], ARGV[a + 5]
          local c = cur[f]
          local exists, replace = false, true
          if c then
            local ct, cr, ca, cu = string.match(c, '^(%d)|(%-?%d+)|(%-?%d+)|(%-?%d+)|')
            if not ct or (cu ~= '0' and tonumber(cu) <= n) then
              c = false -- its linger is over (or it is not a state value): as if absent
            else
              exists = true
              if terminal == '0' and rank ~= '-1' then
                if ct == '1' then
                  local at_new, at_was = tonumber(ARGV[a + 6]), tonumber(ca)
                  replace = not (at_new ~= 0 and at_was ~= 0 and at_new < at_was)
                else
                  replace = tonumber(rank) >= tonumber(cr)
                end
              end
            end
          end
          if replace then
            if not exists then
              write_dirty()
              dirty[f] = nil
              for _, x in ipairs(make_room(st, string.sub(f, 1, 6) == 'shoot:', n)) do
                if cur[x] ~= nil then cur[x] = false end
              end
            end
            cur[f] = value
            dirty[f] = value
            field = f
          end
        end
      end
      if #records > 0 then records[#records + 1] = '\30' end
      records[#records + 1] = ptext .. ' ' .. epoch .. ' ' .. origin .. ' ' .. on .. ' '
                              .. at .. ' ' .. field .. '\31' .. dev .. '\31'
      records[#records + 1] = value
      out[#out + 1] = pos; out[#out + 1] = epoch; out[#out + 1] = 0
    end
    a = a + 10
  end
  -- The group's writes: meta and state in one call, then its messages in
  -- one channel message.
  local hs = {'#seq', fmt(seq)}
  if fresh then
    hs[#hs + 1] = '#epoch'; hs[#hs + 1] = epoch; hs[#hs + 1] = '#run'; hs[#hs + 1] = run
  end
  -- Lifetimes: refreshed at most once per stream lifetime, each set so that
  -- the stream outlives its last write by that much.
  local refresh = fresh or last_now >= (tonumber(got[3] or '0') or 0)
  if refresh then hs[#hs + 1] = '#x'; hs[#hs + 1] = fmt(last_now + STREAM_TTL) end
  for f, v in pairs(dirty) do hs[#hs + 1] = f; hs[#hs + 1] = v end
  redis.call('HSET', st, unpack(hs))
  if #records > 0 then redis.call('PUBLISH', b .. 'c', table.concat(records)) end
  if refresh then
    redis.call('PEXPIRE', st, STATE_TTL)
    redis.call('PEXPIRE', s, 2 * STREAM_TTL)
    redis.call('PEXPIRE', b .. 'p', STATE_TTL)
  end
end

local a = 5
for g = 1, #KEYS do
  local k = tonumber(ARGV[a])
  publish_group(KEYS[g], a + 1, k)
  a = a + 1 + k * 10
end
return out
)lua";

/// Values of one publish in the publish script's arguments.
constexpr size_t publish_values = 10;

/// KEYS: 1 state (with the meta), 2 stream, 3 presence. ARGV: 1 run, 2 new
/// epoch, 3 the alive keys' prefix, 4 state ttl ms, 5 the history size,
/// 6 now (epoch ms), 7 the history's lifetime ms. Returns {epoch, top,
/// {state field, value, ...}, {presence field, value, ...} of live nodes,
/// the oldest position held (0: none)}: held is within the history size and
/// written no longer ago than its lifetime (stream_core::expire).
inline constexpr const char* head = R"lua(
-- When a stream entry was written ("terminal|rank|at|until|now|frame").
local function written(entry)
  return tonumber(string.match(entry[2][2], '^%d|%-?%d+|%-?%d+|%-?%d+|(%-?%d+)|'))
end
local got = redis.call('HMGET', KEYS[1], '#epoch', '#run', '#seq')
local epoch = got[1]
if not (epoch and got[2] == ARGV[1]) then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], '#epoch', epoch, '#run', ARGV[1], '#x', '0')
  redis.call('DEL', KEYS[2])
end
-- A followed user (heads come with each follow and position check) is
-- kept, though nothing is published: its state and presence expire only
-- once no node asks.
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
local top = tonumber(got[3] or '0')
local all = redis.call('HGETALL', KEYS[1])
local state = {}
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 1) ~= '#' then
    state[#state + 1] = all[i]
    state[#state + 1] = all[i + 1]
  end
end
local pres = redis.call('HGETALL', KEYS[3])
local live = {}
for i = 1, #pres, 2 do
  local node = string.match(pres[i], '^(.-)|')
  if node and redis.call('EXISTS', ARGV[3] .. node) == 1 then
    live[#live + 1] = pres[i]
    live[#live + 1] = pres[i + 1]
  end
end
local first = 0
-- Trimming keeps a few more than the history size: they are not read.
local oldest = math.max(top - tonumber(ARGV[5]) + 1, 0)
local e = redis.call('XRANGE', KEYS[2], oldest .. '-0', '+', 'COUNT', 1)
if #e > 0 then
  first = tonumber(string.match(e[1][1], '^(%d+)'))
  -- Past its lifetime a message is not held either: the first one within
  -- it, by halving (positions are written in time order).
  local now, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
  local function kept(p)
    local x = redis.call('XRANGE', KEYS[2], p .. '-0', p .. '-0')
    return #x > 0 and now - written(x[1]) <= ttl
  end
  if now - written(e[1]) > ttl then
    local lo, hi = first + 1, top + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if kept(mid) then hi = mid else lo = mid + 1 end
    end
    first = lo <= top and lo or 0
  end
end
return {epoch, top, state, live, first}
)lua";

/// KEYS: 1 state (with the meta), 2 stream. ARGV: 1 run, 2 new epoch,
/// 3 epoch, 4 since, 5 upto ('+': the top), 6 state ttl ms, 7 the history
/// size, 8 now (epoch ms), 9 the history's lifetime ms. Returns {epoch,
/// complete (0/1), {entries}}: all of (since, upto] or nothing. The stream
/// holds at most the last `history size` positions (trimming may keep a
/// few more: they are not read), none written longer ago than its lifetime.
inline constexpr const char* read = R"lua(
local function written(entry)
  return tonumber(string.match(entry[2][2], '^%d|%-?%d+|%-?%d+|%-?%d+|(%-?%d+)|'))
end
local got = redis.call('HMGET', KEYS[1], '#epoch', '#run', '#seq')
local epoch = got[1]
if not (epoch and got[2] == ARGV[1]) then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], '#epoch', epoch, '#run', ARGV[1], '#x', '0')
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
if epoch ~= ARGV[3] then return {epoch, 0, {}} end
local top = tonumber(got[3] or '0')
local since = tonumber(ARGV[4])
if since > top then return {epoch, 0, {}} end
local upto = top
if ARGV[5] ~= '+' and tonumber(ARGV[5]) < top then upto = tonumber(ARGV[5]) end
if since >= upto then return {epoch, 1, {}} end
if since + tonumber(ARGV[7]) < top then return {epoch, 0, {}} end
local first = string.format('%d', since + 1) .. '-0'
local e = redis.call('XRANGE', KEYS[2], first, string.format('%d', upto) .. '-0')
if #e == 0 or e[1][1] ~= first then return {epoch, 0, {}} end
if tonumber(ARGV[8]) - written(e[1]) > tonumber(ARGV[9]) then return {epoch, 0, {}} end
return {epoch, 1, e}
)lua";

} // namespace kullsync::broker::scripts

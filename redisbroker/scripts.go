package redisbroker

import "github.com/redis/go-redis/v9"

// The Lua scripts run each operation on a channel's keys atomically in
// one round trip. Epochs travel as decimal strings, never as Lua
// numbers: a Lua number is a double, exact only to 2^53, and an epoch
// has 63 bits. Offsets are Lua numbers, exact to 2^53 messages.
//
// A channel's meta hash holds its epoch E in field e and its latest
// offset in field sE, named after the epoch: a publish that names the
// epoch it expects increments sE with one HINCRBY, which creates the
// field (returns 1) when the epoch is not the channel's, so a stale
// expectation costs one HGET more, not a wrong position.
//
// Every script that finds a channel's meta hash missing starts a new
// epoch with the candidate the caller drew (newEpochLua): it announces
// it on the epochs stream first, so that followers check that channel
// at once, then deletes the stream (a stream without its meta is of a
// lost epoch: its meta was evicted, or expired first, and its ids would
// otherwise be read as offsets of the new one) and writes the meta.
// Each announcement names the entry before it (p, "0-0" for none), so a
// follower that sees p differ from the last entry it read knows it
// missed some (trimmed, or the stream was lost) and checks every
// channel it follows.

// epochsLen is the approximate length (XADD MAXLEN ~) of the epochs
// stream: followers read it as it grows, and one that falls further
// behind notices the gap and checks everything.
const epochsLen = "1000"

// newEpochLua defines newepoch(stream, meta, epochs, channel, epoch,
// meta TTL ms or "0"): starts epoch for channel, announced.
const newEpochLua = `
local function newepoch(stream, meta, epochs, ch, e, ttl)
  local last = redis.call('xrevrange', epochs, '+', '-', 'COUNT', 1)
  local p = '0-0'
  if last[1] then p = last[1][1] end
  redis.call('xadd', epochs, 'MAXLEN', '~', '` + epochsLen + `', '*', 'c', ch, 'e', e, 'p', p)
  redis.call('del', stream)
  redis.call('hset', meta, 'e', e, 's' .. e, 0)
  if ttl ~= '0' then redis.call('pexpire', meta, ttl) end
end
`

// publishScript appends one message.
//
// KEYS: stream, meta, epochs stream, [idempotency key]. ARGV: text,
// candidate epoch, MAXLEN ("0": none), stream TTL ms ("0": none), meta
// TTL ms, key TTL ms, channel, the epoch the caller expects ("": none),
// "1" to set the TTLs (else they are set only with a new epoch). It
// returns "EPOCH OFFSET": the new entry's, or, for a key seen within
// the window, the first publish's.
//
// In the common case (expected epoch right, key new, TTLs not due) it
// runs HINCRBY, SET NX GET and XADD. The key is checked after the
// offset is taken, with the one SET that stores it, and a repeat gives
// the offset back: the script is atomic, so nobody saw it.
var publishScript = redis.NewScript(newEpochLua + `
local e, s = ARGV[8], nil
if e ~= '' then
  s = redis.call('hincrby', KEYS[2], 's' .. e, 1)
  if s == 1 and redis.call('hget', KEYS[2], 'e') ~= e then
    redis.call('hdel', KEYS[2], 's' .. e)
    s = nil
  end
end
local ttl = ARGV[9] == '1'
local function setttl()
  if ttl and ARGV[4] ~= '0' then
    redis.call('pexpire', KEYS[1], ARGV[4])
    redis.call('pexpire', KEYS[2], ARGV[5])
  end
end
if not s then
  e = redis.call('hget', KEYS[2], 'e')
  if not e then
    e = ARGV[2]
    newepoch(KEYS[1], KEYS[2], KEYS[3], ARGV[7], e, ARGV[5])
    ttl = true
  end
  s = redis.call('hincrby', KEYS[2], 's' .. e, 1)
end
local r = e .. ' ' .. string.format('%d', s)
if KEYS[4] then
  local v = redis.call('set', KEYS[4], r, 'NX', 'GET', 'PX', ARGV[6])
  if v then
    redis.call('hincrby', KEYS[2], 's' .. e, -1)
    setttl()
    return v
  end
end
local id = string.format('%d-0', s)
if ARGV[3] ~= '0' then
  redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[3], id, 'e', e, 'd', ARGV[1])
else
  redis.call('xadd', KEYS[1], id, 'e', e, 'd', ARGV[1])
end
setttl()
return r
`)

// sinceScript reads a channel's epoch and latest offset, and the
// entries after a position.
//
// KEYS: stream, meta, epochs stream. ARGV: candidate epoch, meta TTL ms
// ("0": none), the position's epoch ("" for the zero position), its
// offset, the id of the entry after it, "1" to read the entries ("0"
// only checks), and the channel. It returns {EPOCH, OFFSET, STATUS,
// ENTRIES}: STATUS "ok", or "lost" when the position is of another
// epoch, after the latest, or when the entry after it is no longer
// kept; ENTRIES as XRANGE returns them.
var sinceScript = redis.NewScript(newEpochLua + `
local e = redis.call('hget', KEYS[2], 'e')
if not e then
  e = ARGV[1]
  newepoch(KEYS[1], KEYS[2], KEYS[3], ARGV[7], e, ARGV[2])
end
local s = tonumber(redis.call('hget', KEYS[2], 's' .. e)) or 0
if ARGV[3] == '' then return {e, s, 'ok'} end
local p = tonumber(ARGV[4])
if ARGV[3] ~= e or p > s then return {e, s, 'lost'} end
if p == s or ARGV[6] ~= '1' then return {e, s, 'ok'} end
local r = redis.call('xrange', KEYS[1], ARGV[5], '+')
if #r == 0 or r[1][1] ~= ARGV[5] then return {e, s, 'lost'} end
return {e, s, 'ok', r}
`)

// epochsScript returns the epoch of each channel whose meta is given
// ("" where the meta is missing), after the id of the epochs stream's
// last entry ("0-0" for none) when asked: read in the same atomic step,
// so a follower that reads the stream from there misses no announcement
// made after the epochs it got. With a meta TTL it also keeps the metas
// from expiring while a node follows them.
//
// KEYS: epochs stream, metas. ARGV: meta TTL ms ("0": leave the TTLs),
// "1" to return the last id first.
var epochsScript = redis.NewScript(`
local out = {}
if ARGV[2] == '1' then
  local last = redis.call('xrevrange', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then out[1] = last[1][1] else out[1] = '0-0' end
end
for i = 2, #KEYS do
  local e = redis.call('hget', KEYS[i], 'e')
  if e then
    if ARGV[1] ~= '0' then redis.call('pexpire', KEYS[i], ARGV[1]) end
    out[#out + 1] = e
  else
    out[#out + 1] = ''
  end
end
return out
`)

// presenceAddScript records or refreshes one presence entry, with the
// expiry time from the server's clock, so that nodes' clocks need not
// agree. The keys expire twice the longest entry's TTL from now, so an
// entry of a dead node can still be reported as expired for a while,
// and then the keys go.
//
// KEYS: expiry zset, entry hash. ARGV: socket, JSON entry, TTL ms
// ("0": none). It returns 1 when the entry was not there.
var presenceAddScript = redis.NewScript(`
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local added
if ttl > 0 then
  added = redis.call('zadd', KEYS[1], string.format('%d', now + ttl), ARGV[1])
else
  added = redis.call('zadd', KEYS[1], '+inf', ARGV[1])
end
redis.call('hset', KEYS[2], ARGV[1], ARGV[2])
local top = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES')
local last = tonumber(top[2])
if last == math.huge then
  redis.call('persist', KEYS[1])
  redis.call('persist', KEYS[2])
else
  local kt = math.floor(2 * (last - now)) + 1000
  redis.call('pexpire', KEYS[1], kt)
  redis.call('pexpire', KEYS[2], kt)
end
return added
`)

// presenceRemoveScript removes one entry. KEYS: expiry zset, entry
// hash. ARGV: socket. It returns 1 when the entry was there.
var presenceRemoveScript = redis.NewScript(`
local n = redis.call('zrem', KEYS[1], ARGV[1])
redis.call('hdel', KEYS[2], ARGV[1])
return n
`)

// presenceListScript returns {LIVE, EXPIRED}, the JSON entries of a
// channel, and removes the expired ones, so each is returned once. An
// empty presence costs one ZRANGE; otherwise TIME, and per thousand
// entries one HMGET, and one ZREM and HDEL of those expired (a Lua call
// takes a bounded number of arguments).
//
// KEYS: expiry zset, entry hash.
var presenceListScript = redis.NewScript(`
local all = redis.call('zrange', KEYS[1], 0, -1, 'WITHSCORES')
if #all == 0 then return {{}, {}} end
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local chunk = 1000
local live, expired, gone = {}, {}, {}
for i = 1, #all, 2 * chunk do
  local ids = {}
  for j = i, math.min(i + 2 * chunk - 1, #all), 2 do ids[#ids + 1] = all[j] end
  local vals = redis.call('hmget', KEYS[2], unpack(ids))
  for k, id in ipairs(ids) do
    local at = tonumber(all[i + 2 * k - 1])
    if at and at <= now then
      gone[#gone + 1] = id
      if vals[k] then expired[#expired + 1] = vals[k] end
    elseif vals[k] then
      live[#live + 1] = vals[k]
    end
  end
end
for i = 1, #gone, chunk do
  local ids = {unpack(gone, i, math.min(i + chunk - 1, #gone))}
  redis.call('zrem', KEYS[1], unpack(ids))
  redis.call('hdel', KEYS[2], unpack(ids))
end
return {live, expired}
`)

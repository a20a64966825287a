package redisbroker

import "github.com/redis/go-redis/v9"

// The Lua scripts run each operation on a channel's keys atomically in
// one round trip. Epochs travel as decimal strings, never as Lua
// numbers: a Lua number is a double, exact only to 2^53, and an epoch
// has 63 bits. Offsets are Lua numbers, exact to 2^53 messages.
//
// Every script that finds a channel's meta hash missing starts a new
// epoch with the candidate the caller drew, and deletes the stream: a
// stream without its meta is of a lost epoch (its meta was evicted, or
// expired first), and its ids would otherwise be read as offsets of the
// new one.

// publishScript appends one message.
//
// KEYS: stream, meta, [idempotency key]. ARGV: text, candidate epoch,
// MAXLEN ("0": none), stream TTL ms ("0": none), meta TTL ms, key TTL
// ms. It returns "EPOCH OFFSET": the new entry's, or, for a key seen
// within the window, the first publish's.
var publishScript = redis.NewScript(`
if KEYS[3] then
  local v = redis.call('get', KEYS[3])
  if v then return v end
end
local e = redis.call('hget', KEYS[2], 'e')
if not e then
  e = ARGV[2]
  redis.call('del', KEYS[1])
  redis.call('hset', KEYS[2], 'e', e, 's', 0)
end
local s = redis.call('hincrby', KEYS[2], 's', 1)
local id = string.format('%d-0', s)
if ARGV[3] ~= '0' then
  redis.call('xadd', KEYS[1], 'MAXLEN', ARGV[3], id, 'e', e, 'd', ARGV[1])
else
  redis.call('xadd', KEYS[1], id, 'e', e, 'd', ARGV[1])
end
if ARGV[4] ~= '0' then
  redis.call('pexpire', KEYS[1], ARGV[4])
  redis.call('pexpire', KEYS[2], ARGV[5])
end
local r = e .. ' ' .. string.format('%d', s)
if KEYS[3] then
  redis.call('set', KEYS[3], r, 'PX', ARGV[6])
end
return r
`)

// sinceScript reads a channel's epoch and latest offset, and the
// entries after a position.
//
// KEYS: stream, meta. ARGV: candidate epoch, meta TTL ms ("0": none),
// the position's epoch ("" for the zero position), its offset, the id
// of the entry after it, and "1" to read the entries ("0" only checks).
// It returns {EPOCH, OFFSET, STATUS, ENTRIES}: STATUS "ok", or "lost"
// when the position is of another epoch, after the latest, or when the
// entry after it is no longer kept; ENTRIES as XRANGE returns them.
var sinceScript = redis.NewScript(`
local e = redis.call('hget', KEYS[2], 'e')
if not e then
  e = ARGV[1]
  redis.call('del', KEYS[1])
  redis.call('hset', KEYS[2], 'e', e, 's', 0)
  if ARGV[2] ~= '0' then
    redis.call('pexpire', KEYS[2], ARGV[2])
  end
end
local s = tonumber(redis.call('hget', KEYS[2], 's'))
if ARGV[3] == '' then return {e, s, 'ok'} end
local p = tonumber(ARGV[4])
if ARGV[3] ~= e or p > s then return {e, s, 'lost'} end
if p == s or ARGV[6] ~= '1' then return {e, s, 'ok'} end
local r = redis.call('xrange', KEYS[1], ARGV[5], '+')
if #r == 0 or r[1][1] ~= ARGV[5] then return {e, s, 'lost'} end
return {e, s, 'ok', r}
`)

// epochsScript returns the epoch of each channel whose meta is given
// ("" where the meta is missing), and keeps the metas of followed
// channels from expiring while a node follows them.
//
// KEYS: metas. ARGV: meta TTL ms ("0": none).
var epochsScript = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  local e = redis.call('hget', k, 'e')
  if e then
    if ARGV[1] ~= '0' then redis.call('pexpire', k, ARGV[1]) end
    out[i] = e
  else
    out[i] = ''
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
local old = redis.call('zscore', KEYS[1], ARGV[1])
if ttl > 0 then
  redis.call('zadd', KEYS[1], string.format('%d', now + ttl), ARGV[1])
else
  redis.call('zadd', KEYS[1], '+inf', ARGV[1])
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
if old then return 0 end
return 1
`)

// presenceRemoveScript removes one entry. KEYS: expiry zset, entry
// hash. ARGV: socket. It returns 1 when the entry was there.
var presenceRemoveScript = redis.NewScript(`
local n = redis.call('zrem', KEYS[1], ARGV[1])
redis.call('hdel', KEYS[2], ARGV[1])
return n
`)

// presenceListScript returns {LIVE, EXPIRED}, the JSON entries of a
// channel, and removes the expired ones, so each is returned once.
//
// KEYS: expiry zset, entry hash.
var presenceListScript = redis.NewScript(`
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = string.format('%d', now)
local gone = redis.call('zrangebyscore', KEYS[1], '-inf', ms)
local expired = {}
for _, m in ipairs(gone) do
  local v = redis.call('hget', KEYS[2], m)
  if v then expired[#expired + 1] = v end
  redis.call('hdel', KEYS[2], m)
end
if #gone > 0 then
  redis.call('zremrangebyscore', KEYS[1], '-inf', ms)
end
local live = {}
for _, m in ipairs(redis.call('zrangebyscore', KEYS[1], '(' .. ms, '+inf')) do
  local v = redis.call('hget', KEYS[2], m)
  if v then live[#live + 1] = v end
end
return {live, expired}
`)

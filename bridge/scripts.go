package bridge

import "github.com/redis/go-redis/v9"

// digestLua computes State.Digest of a key inside the backend: the SHA-1 of
// each element's length-prefixed parts (redis.sha1hex), the first 8 bytes of
// each XORed as two 32-bit halves (Lua 5.1's numbers are doubles), as 16
// hex digits; "0" for an absent key.
const digestLua = `
local function eh(tag, ...)
  local s = ''
  if tag ~= '' then s = #tag .. ':' .. tag end
  for _, p in ipairs({...}) do s = s .. #p .. ':' .. p end
  local h = redis.sha1hex(s)
  return tonumber(string.sub(h, 1, 8), 16), tonumber(string.sub(h, 9, 16), 16)
end
local function vh(v)
  local a, b = eh('', v)
  return bit.tohex(a, 8) .. bit.tohex(b, 8)
end
local function digest(key)
  local t = redis.call('TYPE', key)['ok']
  local hi, lo
  if t == 'none' then return '0' end
  if t == 'string' then
    hi, lo = eh('string', redis.call('GET', key))
  elseif t == 'hash' then
    hi, lo = eh('hash')
    local f = redis.call('HGETALL', key)
    for i = 1, #f, 2 do
      local a, b = eh('', f[i], f[i + 1])
      hi, lo = bit.bxor(hi, a), bit.bxor(lo, b)
    end
  elseif t == 'set' then
    hi, lo = eh('set')
    for _, m in ipairs(redis.call('SMEMBERS', key)) do
      local a, b = eh('', m)
      hi, lo = bit.bxor(hi, a), bit.bxor(lo, b)
    end
  elseif t == 'zset' then
    hi, lo = eh('zset')
    local z = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    for i = 1, #z, 2 do
      local a, b = eh('', z[i], string.format('%.17g', tonumber(z[i + 1])))
      hi, lo = bit.bxor(hi, a), bit.bxor(lo, b)
    end
  elseif t == 'list' then
    hi, lo = eh('list')
    for i, v in ipairs(redis.call('LRANGE', key, 0, -1)) do
      local a, b = eh('', string.format('%d', i - 1), vh(v))
      hi, lo = bit.bxor(hi, a), bit.bxor(lo, b)
    end
  else
    hi, lo = eh('whole:' .. t, redis.call('DUMP', key))
  end
  local at = redis.call('PEXPIRETIME', key)
  if at > 0 then
    local a, b = eh('pxat', string.format('%d', at))
    hi, lo = bit.bxor(hi, a), bit.bxor(lo, b)
  end
  if bit.tobit(hi) == 0 and bit.tobit(lo) == 0 then lo = 1 end
  return bit.tohex(hi, 8) .. bit.tohex(lo, 8)
end
`

// writeLua replaces KEYS[1] with a State, atomically, if the key's digest is
// still ARGV[2] (what the bridge last wrote or read there); otherwise it
// writes nothing and answers 0, and the bridge takes the backend's change in
// first. ARGV[1] is the bridge's marker channel: the writes are published
// between a "b" followed by the key and an "e" there, so that the bridge
// knows their notifications for its own (see Bridge.listen). ARGV[3] is the kind (none,
// string, hash, set, zset, list, whole), ARGV[4] the deadline (Unix ms, 0
// for none), ARGV[5...] the value, the fields and values, the members, the
// scores and members, the elements in order, or the DUMP payload. A payload
// the backend refuses (a module it has not loaded, a newer RDB version, a
// damaged payload) answers -1 and changes nothing.
var writeScript = redis.NewScript(digestLua + `
if digest(KEYS[1]) ~= ARGV[2] then return 0 end
local key, kind = KEYS[1], ARGV[3]
redis.call('PUBLISH', ARGV[1], 'b' .. KEYS[1])
if kind == 'whole' then
  local r = redis.pcall('RESTORE', key, 0, ARGV[5], 'REPLACE')
  if type(r) == 'table' and r.err then
    redis.call('PUBLISH', ARGV[1], 'e')
    return -1
  end
else
  redis.call('UNLINK', key)
end
if kind == 'string' then
  redis.call('SET', key, ARGV[5])
elseif kind ~= 'none' and kind ~= 'whole' then
  local cmd = ({hash = 'HSET', set = 'SADD', zset = 'ZADD', list = 'RPUSH'})[kind]
  for i = 5, #ARGV, 1000 do -- unpack's stack is bounded; 1000 keeps field pairs whole
    redis.call(cmd, key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
if kind ~= 'none' and ARGV[4] ~= '0' then redis.call('PEXPIREAT', key, ARGV[4]) end
redis.call('PUBLISH', ARGV[1], 'e')
return 1
`)

// digestScript answers the digests of KEYS, for the audit.
var digestScript = redis.NewScript(digestKeysLua)

const digestKeysLua = digestLua + `
local out = {}
for i, k in ipairs(KEYS) do out[i] = digest(k) end
return out
`

// readScript answers, per key of KEYS, {type, PEXPIRETIME, value}: the value
// a string, HGETALL's, SMEMBERS', ZRANGE WITHSCORES' or LRANGE's array, or
// for other types their DUMP payload.
var readScript = redis.NewScript(readLua)

const readLua = `
local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  local v = false
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'hash' then v = redis.call('HGETALL', k)
  elseif t == 'set' then v = redis.call('SMEMBERS', k)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif t ~= 'none' then v = redis.call('DUMP', k)
  end
  out[i] = {t, redis.call('PEXPIRETIME', k), v}
end
return out
`

// deltaLua writes only what changed of a hash, set, sorted set or list,
// atomically, if what it changes is still as the bridge last wrote or read
// it there; otherwise it writes nothing and answers 0 (the bridge takes the
// backend's change in first). Other elements are not read: a change of
// them made meanwhile comes as its own notification.
//
// ARGV[1] is the bridge's marker channel (see writeLua), ARGV[2] the key's
// type, ARGV[3] its deadline as PEXPIRETIME answers it (-1 for none),
// ARGV[4] the count of checks, then per check an element and
// what it must be: a hash field and elemHash's hex of its value ("" for
// absent), a set member and SISMEMBER's answer, a sorted-set member and its
// score as "%.17g" ("" for absent), a list index and elemHash's hex of its
// element ("len" and LLEN's answer for the length); then the count of
// commands, and per command its name, the count of its arguments after the
// key, and them (sent in runs of 1,000, which keeps pairs whole).
var deltaScript = redis.NewScript(digestLua + `
local key, kind = KEYS[1], ARGV[2]
if redis.call('TYPE', key)['ok'] ~= kind then return 0 end
if redis.call('PEXPIRETIME', key) ~= tonumber(ARGV[3]) then return 0 end
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local name, want, got = ARGV[i], ARGV[i + 1], ''
  i = i + 2
  if kind == 'hash' then
    local v = redis.call('HGET', key, name)
    if v then got = vh(v) end
  elseif kind == 'set' then
    got = tostring(redis.call('SISMEMBER', key, name))
  elseif kind == 'zset' then
    local sc = redis.call('ZSCORE', key, name)
    if sc then got = string.format('%.17g', tonumber(sc)) end
  elseif name == 'len' then
    got = tostring(redis.call('LLEN', key))
  else
    local v = redis.call('LINDEX', key, tonumber(name))
    if v then got = vh(v) end
  end
  if got ~= want then return 0 end
end
local ncmd = tonumber(ARGV[i])
i = i + 1
redis.call('PUBLISH', ARGV[1], 'b' .. KEYS[1])
for _ = 1, ncmd do
  local cmd, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  if n == 0 then
    redis.call(cmd, key)
  else
    for j = i, i + n - 1, 1000 do
      redis.call(cmd, key, unpack(ARGV, j, math.min(j + 999, i + n - 1)))
    end
  end
  i = i + n
end
redis.call('PUBLISH', ARGV[1], 'e')
return 1
`)

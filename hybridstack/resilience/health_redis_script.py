"""The Lua script every batch of the Redis health store runs: data, not logic in Python.

:data:`SYNC_SCRIPT` applies one batch of pushes atomically with Redis's clock (``TIME``
inside the script, never a host's), decides the fleet's breaker transitions over the
shared window, publishes the breakers it changed, and answers with the whole shared
state. :class:`~hybridstack.resilience.health_redis.RedisHealthStore` builds its
arguments and reads its answer; the link (:mod:`~hybridstack.resilience.health_redis_link`)
only runs it.

Arguments (``ARGV``; no ``KEYS``, every key is under ``ARGV[1]``):

1. the key prefix ``{<prefix>}`` (one hash slot);
2. the calling process's owner id (probe claims, and to skip its own notifications);
3. the batch as JSON, a list of ops ``[kind, key, ...]``: ``o`` one outcome judged by a
   closed breaker, ``open``, ``c`` closed (by a probe or a reset), ``h`` hold, ``p``
   claim the probe, ``px`` extend an owned claim, ``u`` release it, ``l`` a latency
   sample, ``j`` one served jurisdiction;
4. the share-window sizes asked for, as JSON;
5. the keys' time to live in milliseconds;
6. how many served jurisdictions to keep.

Answer: JSON ``{"b": {key: [open, open_ms, cooldown_s, failover, version, held_ms]},
"c": {key: [mine, pttl_ms]}, "l": {deployment: ewma_s}, "j": {size: [counts, total]}}``.
A batch that changed a breaker also publishes ``{"o": owner, "b": rows}`` on
``<prefix>:changed``.
"""

from __future__ import annotations

__all__ = ["SYNC_SCRIPT"]

SYNC_SCRIPT = r"""
local P = ARGV[1]
local owner = ARGV[2]
local ops = cjson.decode(ARGV[3])
local sizes = cjson.decode(ARGV[4])
local ttl = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local names = P .. ':names'
local changed = false
local touched = {}
local claims = {}

local function bkey(k) return P .. ':b:' .. k end
local function load(k)
  local h = redis.call('HMGET', bkey(k), 'st', 'ou', 'cd', 'fo', 'v', 'hu', 'ls', 'run')
  return {st = tonumber(h[1]) or 0, ou = tonumber(h[2]) or 0, cd = tonumber(h[3]) or 0,
          fo = tonumber(h[4]) or 0, v = tonumber(h[5]) or 0, hu = tonumber(h[6]) or 0,
          ls = tonumber(h[7]) or 0, run = tonumber(h[8]) or 0}
end
local function save(k, b)
  redis.call('HSET', bkey(k), 'st', b.st, 'ou', b.ou, 'cd', b.cd, 'fo', b.fo, 'v', b.v,
             'hu', b.hu, 'ls', b.ls, 'run', b.run)
  redis.call('PEXPIRE', bkey(k), ttl)
  redis.call('SADD', names, k)
  redis.call('PEXPIRE', names, ttl)
  touched[k] = true
end
local function open(b, cd, fo)
  local untl = now + cd * 1000
  if b.st == 1 then
    if untl > b.ou then b.ou = untl end
    if cd > b.cd then b.cd = cd end
    if fo == 1 then b.fo = 1 end
  else
    b.st = 1; b.ou = untl; b.cd = cd; b.fo = fo
  end
  b.v = b.v + 1
  changed = true
end

for _, op in ipairs(ops) do
  local kind, k = op[1], op[2]
  if kind == 'o' then
    -- one outcome judged by a closed breaker: {'o', key, failed, age_ms, failure_threshold,
    -- minimum_requests, failure_rate_threshold, window_ms, window_size, cooldown_s}
    local b = load(k)
    if b.st == 0 then
      local f, ts = op[3], now - op[4]
      local window_ms, size = op[8], op[9]
      local w = P .. ':w:' .. k
      redis.call('LPUSH', w, ts .. ':' .. f)
      redis.call('LTRIM', w, 0, size - 1)
      redis.call('PEXPIRE', w, ttl)
      if f == 1 then
        b.run = b.run + 1
      else
        b.run = 0
        if ts > b.ls then b.ls = ts end
      end
      local horizon = now - window_ms
      local n, fails = 0, 0
      for _, e in ipairs(redis.call('LRANGE', w, 0, size - 1)) do
        local sep = string.find(e, ':', 1, true)
        if tonumber(string.sub(e, 1, sep - 1)) >= horizon then
          n = n + 1
          if string.sub(e, sep + 1) == '1' then fails = fails + 1 end
        end
      end
      local needed = op[5]
      if b.ls > 0 and now - b.ls <= window_ms then needed = op[6] end
      if (n >= op[6] and fails >= op[7] * n) or b.run >= needed then open(b, op[10], 0) end
      save(k, b)
    end
  elseif kind == 'open' then
    local b = load(k)
    open(b, op[3], op[4])
    save(k, b)
  elseif kind == 'c' then
    -- closed by a probe's success (only once the fleet's cool-down is over) or a reset
    local b = load(k)
    if b.st == 1 and (op[3] == 1 or b.ou <= now + 500) then
      b.st = 0; b.ou = 0; b.fo = 0; b.cd = 0; b.run = 0; b.ls = now; b.v = b.v + 1
      redis.call('DEL', P .. ':w:' .. k)
      changed = true
      save(k, b)
    end
  elseif kind == 'h' then
    local b = load(k)
    local untl = now + op[3] * 1000
    if untl > b.hu then
      b.hu = untl
      changed = true
      save(k, b)
    end
  elseif kind == 'p' or kind == 'px' then
    local pk = P .. ':p:' .. k
    local cur = redis.call('GET', pk)
    if not cur and kind == 'p' then
      redis.call('SET', pk, owner, 'PX', op[3])
      claims[k] = {1, op[3]}
    elseif cur == owner then
      redis.call('PEXPIRE', pk, op[3])
      claims[k] = {1, op[3]}
    elseif cur then
      claims[k] = {0, redis.call('PTTL', pk)}
    end
  elseif kind == 'u' then
    local pk = P .. ':p:' .. k
    if redis.call('GET', pk) == owner then
      redis.call('DEL', pk)
      changed = true
    end
  elseif kind == 'l' then
    local lk = P .. ':l:' .. k
    local old = tonumber(redis.call('HGET', lk, 'e'))
    local e = op[3]
    if old then e = op[4] * op[3] + (1 - op[4]) * old end
    redis.call('HSET', lk, 'e', e)
    redis.call('HINCRBY', lk, 'n', 1)
    redis.call('PEXPIRE', lk, ttl)
    redis.call('SADD', P .. ':lnames', k)
    redis.call('PEXPIRE', P .. ':lnames', ttl)
  elseif kind == 'j' then
    redis.call('LPUSH', P .. ':j', k)
    redis.call('LTRIM', P .. ':j', 0, keep - 1)
    redis.call('PEXPIRE', P .. ':j', ttl)
  end
end

local function row(k)
  local h = redis.call('HMGET', bkey(k), 'st', 'ou', 'cd', 'fo', 'v', 'hu')
  if not h[5] then return nil end
  local ou, hu = tonumber(h[2]) or 0, tonumber(h[6]) or 0
  return {tonumber(h[1]) or 0, math.max(0, ou - now), tonumber(h[3]) or 0,
          tonumber(h[4]) or 0, tonumber(h[5]), math.max(0, hu - now)}
end

if changed then
  -- the changed breakers ride along, so the others adopt them without a round trip
  local rows = {}
  for k, _ in pairs(touched) do rows[k] = row(k) end
  redis.call('PUBLISH', P .. ':changed', cjson.encode({o = owner, b = rows}))
end

local out_b = {}
for _, k in ipairs(redis.call('SMEMBERS', names)) do
  local r = row(k)
  if r then out_b[k] = r else redis.call('SREM', names, k) end
end
local out_l = {}
for _, k in ipairs(redis.call('SMEMBERS', P .. ':lnames')) do
  local e = redis.call('HGET', P .. ':l:' .. k, 'e')
  if e then out_l[k] = tonumber(e) else redis.call('SREM', P .. ':lnames', k) end
end
local out_j = {}
for _, size in ipairs(sizes) do
  local counts, total = {}, 0
  for _, j in ipairs(redis.call('LRANGE', P .. ':j', 0, size - 1)) do
    counts[j] = (counts[j] or 0) + 1
    total = total + 1
  end
  out_j[tostring(size)] = {counts, total}
end
return cjson.encode({b = out_b, c = claims, l = out_l, j = out_j})
"""

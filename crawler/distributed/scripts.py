"""The Lua scripts that make leases atomic.

Redis runs a script as one step, so a request is always in exactly one place: the queue, or
one worker's lease hash. Times come from the Redis server's clock (``TIME``), so the machines'
clocks never need to agree. Scripts touch keys they compute from a prefix: that is fine on one
Redis server (what we support), not on Redis Cluster.

A lease entry is ``<score>|<encoded request>``: the score (``-priority``) is kept so a request
goes back to the queue where it was.
"""

from __future__ import annotations

from typing import Any

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Move every lease of worker w back into the queue; returns how many.
_REQUEUE_FN = """
local function requeue(leases_key, queue_key)
  local vals = redis.call('HVALS', leases_key)
  for _, v in ipairs(vals) do
    local sep = string.find(v, '|', 1, true)
    redis.call('ZADD', queue_key, string.sub(v, 1, sep - 1), string.sub(v, sep + 1))
  end
  redis.call('DEL', leases_key)
  return #vals
end
"""

# KEYS: meta, queue, leases, workers, lease_seq, pages   ARGV: worker_id, ttl_ms[, count]
# -> {token1, data1, token2, data2, ...} (at most count, default 1) or false when nothing may be
# popped. One round trip fills every free download slot; never more than the pages --max-pages
# still allows.
POP = _NOW + """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' and state ~= 'seeding' then return false end
local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline') or '0') or 0
if deadline > 0 and now >= deadline then
  redis.call('HSET', KEYS[1], 'state', 'stopping', 'reason', 'closespider_timeout')
  return false
end
local count = tonumber(ARGV[3] or '1') or 1
local max_pages = tonumber(redis.call('HGET', KEYS[1], 'max_pages') or '0') or 0
if max_pages > 0 then
  local done = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
  if done >= max_pages then
    redis.call('HSET', KEYS[1], 'state', 'stopping', 'reason', 'closespider_pagecount')
    return false
  end
  if count > max_pages - done then count = max_pages - done end
end
if count < 1 then count = 1 end
local r = redis.call('ZRANGE', KEYS[2], 0, count - 1, 'WITHSCORES')
if #r == 0 then return false end
local out = {}
for i = 1, #r, 2 do
  redis.call('ZREM', KEYS[2], r[i])
  local token = redis.call('INCR', KEYS[5])
  redis.call('HSET', KEYS[3], token, r[i + 1] .. '|' .. r[i])
  out[#out + 1] = token
  out[#out + 1] = r[i]
end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[2]), ARGV[1])
return out
"""

# KEYS: seen, queue, leases   ARGV: fingerprint ('' = do not filter), score, data, token ('' = none)
# Adds to the seen set and the queue in one step (a worker dying between the two would
# otherwise leave a URL marked seen that no queue holds), and hands over the lease of the
# request this one replaces (retry, redirect). Returns 1 if queued, 0 if a duplicate.
PUSH = """
local queued = 1
if ARGV[1] ~= '' and redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  queued = 0
else
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[3], ARGV[4]) end
return queued
"""

# KEYS: workers, queue, requeued, lost_workers   ARGV: lease_prefix, info_prefix
# Requeue the leases of every worker whose heartbeat expired. Returns {workers, requests}.
REAP = _NOW + _REQUEUE_FN + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local n = 0
for _, w in ipairs(dead) do
  n = n + requeue(ARGV[1] .. w, KEYS[2])
  redis.call('ZREM', KEYS[1], w)
  redis.call('DEL', ARGV[2] .. w)
end
if n > 0 then redis.call('INCRBY', KEYS[3], n) end
if #dead > 0 then redis.call('INCRBY', KEYS[4], #dead) end
return {#dead, n}
"""

# KEYS: workers, leases, queue, info   ARGV: worker_id
# A worker leaving: whatever it still holds goes back to the queue. Returns how many.
LEAVE = _REQUEUE_FN + """
local n = requeue(KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[4])
return n
"""

# KEYS: leases, queue  -> how many requests went back to the queue.
REQUEUE = _REQUEUE_FN + """
return requeue(KEYS[1], KEYS[2])
"""

# KEYS: workers   ARGV: worker_id, ttl_ms  -> 1 if the worker had been declared dead.
HEARTBEAT = _NOW + """
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"""

# KEYS: meta, queue, workers   ARGV: lease_prefix
# The crawl is finished when it is running, the queue is empty and no live worker holds a
# lease. Returns the state after the check.
FINISH_CHECK = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' then return state or '' end
if redis.call('ZCARD', KEYS[2]) > 0 then return state end
for _, w in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if redis.call('HLEN', ARGV[1] .. w) > 0 then return state end
end
redis.call('HSET', KEYS[1], 'state', 'finished', 'reason', 'finished')
return 'finished'
"""

# KEYS: meta   ARGV: from_state, to_state, reason  -> 1 if changed.
TRANSITION = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'reason', ARGV[3])
return 1
"""

# KEYS: meta, crawls   ARGV: crawl_id, config, max_pages, max_time_ms
# Registers a new crawl in state 'seeding' with its deadline on the Redis clock.
REGISTER = _NOW + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local deadline = 0
if tonumber(ARGV[4]) > 0 then deadline = now + tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], 'config', ARGV[2], 'state', 'seeding', 'reason', '',
           'max_pages', ARGV[3], 'deadline', deadline, 'created', now)
redis.call('ZADD', KEYS[2], now, ARGV[1])
return 1
"""

NOW = _NOW + "return now"


def pairs(flat: list[Any] | None) -> list[tuple[Any, Any]]:
    """``POP``'s ``{token, data, token, data...}`` as (token, data) pairs."""
    flat = list(flat or [])
    return list(zip(flat[0::2], flat[1::2], strict=True))


class Scripts:
    """The scripts registered on one client (redis-py uses EVALSHA, falling back to EVAL).

    In a pipeline, scripts are sent with EVAL (``WorkerContext.flush``): redis-py would otherwise check
    ``SCRIPT EXISTS`` first, one more round trip per pipeline, and an EVALSHA failing with
    NOSCRIPT in the middle of a pipeline would leave its other commands applied.
    """

    def __init__(self, client: Any) -> None:
        self.pop = client.register_script(POP)
        self.push = client.register_script(PUSH)
        self.reap = client.register_script(REAP)
        self.leave = client.register_script(LEAVE)
        self.requeue = client.register_script(REQUEUE)
        self.heartbeat = client.register_script(HEARTBEAT)
        self.finish_check = client.register_script(FINISH_CHECK)
        self.transition = client.register_script(TRANSITION)
        self.register = client.register_script(REGISTER)
        self.now = client.register_script(NOW)

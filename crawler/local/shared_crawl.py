"""The crawl's state in the private Redis: reopening it for ``--resume``, forgetting it after.

Every process of the previous run is dead when ``--resume`` starts (the supervisor started
them and they die with it), so their leases go straight back to the queue instead of waiting
for heartbeats to expire, and the run's limits start again (``--max-pages`` counts "in this
run", as on one process).
"""

from __future__ import annotations

from typing import Any

from crawler.distributed.keys import CRAWLS_KEY, CrawlKeys

# KEYS: meta, queue, workers   ARGV: lease_prefix, info_prefix, max_pages, max_time_ms
# -> the state before (with the state it resumes in).
REOPEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
local n = 0
for _, w in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  for _, v in ipairs(redis.call('HVALS', ARGV[1] .. w)) do
    local sep = string.find(v, '|', 1, true)
    redis.call('ZADD', KEYS[2], string.sub(v, 1, sep - 1), string.sub(v, sep + 1))
    n = n + 1
  end
  redis.call('DEL', ARGV[1] .. w, ARGV[2] .. w)
end
redis.call('DEL', KEYS[3])
local deadline = 0
if tonumber(ARGV[4]) > 0 then deadline = now + tonumber(ARGV[4]) end
local next_state = 'running'
if state == 'seeding' then next_state = 'seeding' end
redis.call('HSET', KEYS[1], 'state', next_state, 'reason', '', 'max_pages', ARGV[3],
           'deadline', deadline)
return state
"""


# KEYS: workers, queue   ARGV: lease_prefix, info_prefix, pid
# A child process died (the supervisor saw it): requeue the leases of the worker ids of that
# pid now instead of after the heartbeat TTL. Returns how many requests went back.
REQUEUE_PID = """
local n = 0
for _, w in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.find(w, '-' .. ARGV[3] .. '-', 1, true) then
    for _, v in ipairs(redis.call('HVALS', ARGV[1] .. w)) do
      local sep = string.find(v, '|', 1, true)
      redis.call('ZADD', KEYS[2], string.sub(v, 1, sep - 1), string.sub(v, sep + 1))
      n = n + 1
    end
    redis.call('DEL', ARGV[1] .. w, ARGV[2] .. w)
    redis.call('ZREM', KEYS[1], w)
  end
end
return n
"""


def requeue_dead_process(client: Any, crawl_id: str, pid: int) -> int:
    """Give the leases of the dead child process ``pid`` back to the queue at once."""
    keys = CrawlKeys(crawl_id)
    return int(client.register_script(REQUEUE_PID)(
        keys=[keys.workers, keys.queue], args=[keys.lease_prefix, keys.info_prefix, pid]))


def reopen_crawl(client: Any, crawl_id: str, *, max_pages: int, max_time: float) -> str:
    """Requeue every lease of the dead run, reset the run's limits; the state it was in
    (``''`` when the crawl is not in this Redis)."""
    keys = CrawlKeys(crawl_id)
    client.delete(keys.pages)  # --max-pages counts this run's pages
    before = client.register_script(REOPEN)(
        keys=[keys.meta, keys.queue, keys.workers],
        args=[keys.lease_prefix, keys.info_prefix, int(max_pages), int(max_time * 1000)],
    )
    return before.decode() if isinstance(before, bytes) else str(before or "")


def crawl_state_now(client: Any, crawl_id: str) -> str:
    state = client.hget(CrawlKeys(crawl_id).meta, "state")
    return state.decode() if isinstance(state, bytes) else str(state or "")


def forget_crawl(client: Any, crawl_id: str) -> None:
    """Drop a finished crawl's keys (its seen-set would otherwise grow the file forever)."""
    keys = CrawlKeys(crawl_id)
    names = [*client.scan_iter(match=keys.base + ":*", count=1000), keys.meta]
    if names:
        client.unlink(*names)
    client.zrem(CRAWLS_KEY, crawl_id)


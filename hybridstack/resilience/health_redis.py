"""Health state shared through Redis: one fleet's breakers, holds, latency and share window.

:class:`RedisHealthStore` implements :class:`~hybridstack.resilience.health.HealthStore`
over ``redis.asyncio`` (``pip install 'hybridstack[redis]'``). The calling code never
waits on Redis:

* **pushes** (outcomes, opens, closes, holds, probe claims, latency samples, served
  jurisdictions) go into a local queue; a background thread with its own event loop
  sends them in batches — at once for what changes a verdict (a failure, an open, a
  hold, a claim), every ``flush_interval_s`` for the rest;
* **every batch is one Lua script** (:data:`SYNC_SCRIPT`): it applies the batch
  atomically with Redis's clock (``TIME`` inside the script, never a host's), decides
  the fleet's breaker transitions over the shared window, and answers with the whole
  shared state, which the thread stores as the local read cache;
* **pulls** happen with every batch, at least every ``cache_ttl_s``, and at once when
  another process changed a breaker (``PUBLISH`` from the script, a subscription here).

What is shared per breaker: the rate window and failure run (in arrival order), open
state, open-until and cool-down, fail-over flag, the Retry-After / throttle hold, and
the half-open probe owner (``SET NX PX``: one process probes, the others wait for its
verdict). Per deployment: the latency EWMA. Router-wide: the last calls' jurisdictions
for the diversified policy. The send-order bookkeeping, warm-up cap and probe count
stay per process.

**Outage**: any error (connection, timeout, script) marks the store degraded, logs ONE
warning on the ``hybridstack.health`` logger, and every read answers "nothing shared"
so each process decides from its own state; calls never fail because of Redis. The
thread retries every ``retry_s``; queued pushes are kept (bounded; expired outcomes
and holds are dropped) and sent when Redis is back, with an INFO line.

Keys live under ``{<prefix>}:`` (one hash slot, so a Redis Cluster keeps the script's
keys together) and expire after ``key_ttl_s`` without writes. A process that forks
must build its own store in the child (the thread does not survive ``fork``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hybridstack.errors import ConfigurationError
from hybridstack.resilience.health import HealthStore, SharedBreaker

__all__ = ["SYNC_SCRIPT", "RedisHealthStore"]

logger = logging.getLogger("hybridstack.health")

#: How long an unused probe claim stays reserved (extended to the probe's timeout once
#: the probe is actually sent).
_RESERVE_S = 2.0
#: A claim reply older than this is not trusted: ask again.
_CLAIM_MARGIN_S = 0.25
#: The most served jurisdictions kept for the share window.
_SHARE_KEEP = 10_000

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


def _safe_url(url: str) -> str:
    """The URL without its password (for logs and reprs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable redis url>"
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def _mapping(value: Any) -> dict[str, Any]:
    # cjson encodes an empty table as {} (or [] for an empty array): both mean "nothing".
    return value if isinstance(value, dict) else {}


class RedisHealthStore(HealthStore):
    """Health state shared through one Redis by every process given the same ``prefix``.

    Args:
        url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
        prefix: namespace of every key (fleets that must not share use different ones).
        cache_ttl_s: the most a read may lag another process's push, absent a change
            notification (the state is pulled at least this often).
        flush_interval_s: how long non-urgent pushes (successes, latency samples, served
            jurisdictions) wait to be batched.
        timeout_s: connect and command timeout; a slower Redis counts as down.
        retry_s: how often an unreachable Redis is tried again.
        key_ttl_s: keys expire after this long without writes.
    """

    shared = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "hybridstack",
        cache_ttl_s: float = 1.0,
        flush_interval_s: float = 0.2,
        timeout_s: float = 2.0,
        retry_s: float = 1.0,
        key_ttl_s: float = 3600.0,
    ) -> None:
        try:
            import redis.asyncio  # noqa: F401  (fail here, not in the thread)
        except ImportError:
            raise ConfigurationError(
                "a Redis health store needs the redis client: pip install 'hybridstack[redis]'"
            ) from None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                f"health store url {_safe_url(url)!r}: expected redis://host:port/db, "
                "rediss://... or unix://..."
            )
        if not prefix or any(c in prefix for c in "{}\n\r ") or len(prefix) > 200:
            raise ConfigurationError(
                f"health store prefix {prefix!r}: use a short name without spaces or braces, "
                "such as 'hybridstack' or 'prod-eu'"
            )
        for name, value in (
            ("cache_ttl_s", cache_ttl_s),
            ("flush_interval_s", flush_interval_s),
            ("timeout_s", timeout_s),
            ("retry_s", retry_s),
            ("key_ttl_s", key_ttl_s),
        ):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"health store {name} must be a positive number")
        self.url = url
        self.prefix = prefix
        self.cache_ttl_s = float(cache_ttl_s)
        self.flush_interval_s = float(flush_interval_s)
        self.timeout_s = float(timeout_s)
        self.retry_s = float(retry_s)
        self.key_ttl_s = float(key_ttl_s)
        self._p = "{" + prefix + "}"
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        # Pushes: (seq, monotonic time queued, op). deque append/popleft are thread-safe.
        self._ops: deque[tuple[int, float, list[Any]]] = deque(maxlen=50_000)
        self._seq = itertools.count(1)
        #: breaker key -> seq of its newest local push (its view waits until included).
        self._dirty: dict[str, int] = {}
        self._pulled_seq = 0
        self._views: dict[str, SharedBreaker] = {}
        self._claims: dict[str, tuple[bool | None, float]] = {}
        self._latency: dict[str, float] = {}
        self._shares: dict[int, tuple[dict[str, int], int, int]] = {}
        self._share_sizes: set[int] = set()
        self._share_local: deque[tuple[int, str]] = deque(maxlen=_SHARE_KEEP)
        self._live = False
        self._degraded = False
        self._stop = False
        self._kicked = False
        #: Round trips that worked, and those that failed (for tests and dashboards).
        self.syncs = 0
        self.errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"hybridstack-health[{prefix}]", daemon=True
        )
        self._thread.start()
        self._ready.wait(5.0)

    def __repr__(self) -> str:
        state = "degraded" if self._degraded else ("live" if self._live else "connecting")
        return f"RedisHealthStore({_safe_url(self.url)!r}, prefix={self.prefix!r}, {state})"

    # --- the caller's side (sync, local) ------------------------------------------------

    def _push(self, op: list[Any], key: str | None = None, *, urgent: bool = False) -> None:
        seq = next(self._seq)
        self._ops.append((seq, time.monotonic(), op))
        if key is not None:
            self._dirty[key] = seq
        if urgent:
            self._kick()

    def _kick(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or self._kicked:
            return
        self._kicked = True
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the thread's loop is closed (store closed)
            pass

    def breaker_outcome(self, key: str, failed: bool, settings: Any) -> None:
        self._push(
            [
                "o",
                key,
                1 if failed else 0,
                0,
                settings.failure_threshold,
                settings.minimum_requests,
                settings.failure_rate_threshold,
                int(settings.window_s * 1000),
                settings.window_size,
                settings.cooldown_s,
            ],
            key,
            urgent=failed,
        )

    def breaker_opened(self, key: str, cooldown_s: float, failover: bool) -> None:
        self._push(["open", key, cooldown_s, 1 if failover else 0], key, urgent=True)

    def breaker_closed(self, key: str, force: bool = False) -> None:
        self._push(["c", key, 1 if force else 0], key, urgent=True)

    def hold(self, key: str, seconds: float) -> None:
        if seconds > 0:
            self._push(["h", key, seconds], key, urgent=True)

    def breaker_view(self, key: str) -> SharedBreaker | None:
        if not self._live:
            return None
        view = self._views.get(key)
        if view is None or self._pulled_seq < self._dirty.get(key, 0):
            return None
        return view

    def claim_probe(self, key: str, ttl_s: float) -> bool | None:
        if not self._live:
            return True  # nothing shared now: the local breaker decides alone
        now = time.monotonic()
        entry = self._claims.get(key)
        if entry is not None and now < entry[1]:
            return entry[0]
        self._claims[key] = (None, now + self.timeout_s + _RESERVE_S)
        self._push(["p", key, int(_RESERVE_S * 1000)], urgent=True)
        return None

    def probe_started(self, key: str, ttl_s: float) -> None:
        if self._live:
            self._claims[key] = (True, time.monotonic() + max(ttl_s - _CLAIM_MARGIN_S, 0.0))
            self._push(["px", key, int(ttl_s * 1000)])

    def release_probe(self, key: str) -> None:
        if self._claims.pop(key, None) is not None:
            self._push(["u", key], urgent=True)

    def latency_sample(self, deployment: str, seconds: float, alpha: float) -> None:
        self._push(["l", deployment, seconds, alpha])

    def latency_ewma(self, deployment: str) -> float | None:
        return self._latency.get(deployment) if self._live else None

    def share_add(self, jurisdiction: str) -> None:
        seq = next(self._seq)
        self._ops.append((seq, time.monotonic(), ["j", jurisdiction]))
        self._share_local.append((seq, jurisdiction))

    def share_counts(self, size: int) -> tuple[dict[str, int], int] | None:
        if size not in self._share_sizes:
            self._share_sizes.add(size)
            self._kick()
        if not self._live:
            return None
        entry = self._shares.get(size)
        if entry is None:
            return None
        counts, total, seq = entry
        local = self._share_local
        while local and local[0][0] <= seq:
            local.popleft()
        if local:
            # Served here since the pull: count them now, not a batch later.
            counts = dict(counts)
            for _, jurisdiction in local:
                counts[jurisdiction] = counts.get(jurisdiction, 0) + 1
            total += len(local)
        return counts, total

    @property
    def degraded(self) -> bool:
        return self._degraded

    def close(self) -> None:
        """Send what is queued (best effort, within ``timeout_s``) and stop the thread."""
        if self._stop:
            return
        self._stop = True
        self._kicked = False
        self._kick()
        self._thread.join(timeout=self.timeout_s * 4 + 1.0)

    def sync_now(self, timeout_s: float = 5.0) -> bool:
        """Block until one round trip after this call ended; True if it reached Redis.

        For tests and scripts that need the fleet's state *now*; calls never need it.
        """
        if self._stop:
            return False
        target = self.syncs + self.errors
        done_at = time.monotonic() + timeout_s
        self._kicked = False
        self._kick()
        while time.monotonic() < done_at:
            if self.syncs + self.errors > target + 1 or (
                self.syncs + self.errors > target and not self._ops
            ):
                return self._live
            time.sleep(0.002)
            self._kicked = False
            self._kick()
        return False

    # --- the thread's side ----------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            self._wake = asyncio.Event()
            self._loop = loop
            self._ready.set()
            loop.run_until_complete(self._main())
        except BaseException:  # pragma: no cover - never let the thread die loudly
            logger.exception("hybridstack health store thread stopped")
        finally:
            self._live = False
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def _client(self, *, timeout: bool) -> Any:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        return aioredis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=self.timeout_s,
            socket_timeout=self.timeout_s if timeout else None,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )

    async def _main(self) -> None:
        assert self._wake is not None
        client = self._client(timeout=True)
        script = client.register_script(SYNC_SCRIPT)
        listener = asyncio.ensure_future(self._listen())
        next_pull = 0.0
        next_flush = 0.0  # when the oldest queued non-urgent push is due (0: none queued)
        try:
            while not self._stop:
                now = time.monotonic()
                if self._ops and not next_flush:
                    next_flush = now + self.flush_interval_s
                if not self._live:
                    deadline = next_pull  # degraded: try again at the retry time
                elif next_flush:
                    deadline = min(next_flush, next_pull)
                else:
                    deadline = min(now + self.flush_interval_s, next_pull)
                if deadline > now:
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=deadline - now)
                    except TimeoutError:
                        pass
                woken = self._wake.is_set()
                self._wake.clear()
                self._kicked = False
                if self._stop:
                    break
                now = time.monotonic()
                if not self._live and now < next_pull:
                    continue  # degraded: keep queueing until the retry time
                if not (woken or now >= next_pull or (next_flush and now >= next_flush)):
                    continue
                ok = await self._sync(script)
                next_pull = time.monotonic() + (self.cache_ttl_s if ok else self.retry_s)
                next_flush = 0.0
            if self._ops and self._live:
                await self._sync(script)  # the last pushes (probe releases, holds)
        finally:
            listener.cancel()
            try:
                await listener
            except BaseException:
                pass
            try:
                await client.aclose()
            except Exception:
                pass

    async def _listen(self) -> None:
        """Wake the sync loop when another process changed a breaker."""
        channel = self._p + ":changed"
        while not self._stop:
            client = self._client(timeout=False)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel)
                while not self._stop:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._notified(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(self.retry_s)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass

    def _notified(self, data: Any) -> None:
        """Adopt the breakers another process's batch changed; pull soon for the rest."""
        try:
            news = json.loads(data)
            if news.get("o") == self._owner:
                return
            rows = _mapping(news.get("b"))
        except (TypeError, ValueError, AttributeError):
            rows = {}
        if rows and self._live:
            views = dict(self._views)
            for key, view in self._rows(rows, time.monotonic(), views).items():
                old = views.get(key)
                if old is None or view.version >= old.version:  # never step back
                    views[key] = view
            self._views = views
        assert self._wake is not None
        self._wake.set()

    def _rows(
        self, rows: dict[str, Any], arrived: float, old_views: dict[str, SharedBreaker]
    ) -> dict[str, SharedBreaker]:
        views: dict[str, SharedBreaker] = {}
        for key, row in rows.items():
            st, open_ms, cooldown, failover, version, held_ms = row
            old = old_views.get(key)
            held = held_ms / 1000.0
            if (
                old is not None
                and old.version == version
                and abs(old.remaining(old.held_for_s, arrived) - held) < 0.05
            ):
                views[key] = old  # unchanged: the breakers need not look again
                continue
            views[key] = SharedBreaker(
                version=int(version),
                open=bool(st),
                open_for_s=open_ms / 1000.0,
                cooldown_s=float(cooldown),
                failover=bool(failover),
                held_for_s=held,
                at=arrived,
            )
        return views

    def _batch(self) -> tuple[list[tuple[int, float, list[Any]]], list[list[Any]], int]:
        taken: list[tuple[int, float, list[Any]]] = []
        ops: list[list[Any]] = []
        top = self._pulled_seq
        now = time.monotonic()
        while True:
            try:
                item = self._ops.popleft()
            except IndexError:
                break
            taken.append(item)
            seq, queued, op = item
            top = max(top, seq)
            age = now - queued
            kind = op[0]
            if kind == "o":
                if age * 1000 > op[7]:
                    continue  # outside the window by now
                op = [*op]
                op[3] = int(age * 1000)
            elif kind == "h":
                if op[2] - age <= 0:
                    continue  # the hold already ran out
                op = [op[0], op[1], op[2] - age]
            elif kind == "p" and age > _RESERVE_S / 2:
                continue  # a stale claim: the caller asks again
            ops.append(op)
        return taken, ops, top

    async def _sync(self, script: Any) -> bool:
        taken, ops, top = self._batch()
        try:
            raw = await script(
                keys=[],
                args=[
                    self._p,
                    self._owner,
                    json.dumps(ops),
                    json.dumps(sorted(self._share_sizes)),
                    int(self.key_ttl_s * 1000),
                    _SHARE_KEEP,
                ],
            )
            data = json.loads(raw)
        except Exception as error:
            # Keep what was not sent (oldest first), unless the queue filled meanwhile.
            if len(self._ops) + len(taken) <= (self._ops.maxlen or 0):
                self._ops.extendleft(reversed(taken))
            self._failed(error)
            return False
        self._apply(data, top, time.monotonic())
        return True

    def _failed(self, error: BaseException) -> None:
        self.errors += 1
        self._live = False
        self._claims.clear()
        if not self._degraded:
            self._degraded = True
            logger.warning(
                "hybridstack health store %s (prefix %r) unreachable (%s: %s): each process "
                "uses its own health state until Redis is back",
                _safe_url(self.url),
                self.prefix,
                type(error).__name__,
                str(error)[:200],
            )

    def _apply(self, data: dict[str, Any], top: int, arrived: float) -> None:
        views = self._rows(_mapping(data.get("b")), arrived, self._views)
        for key, (mine, pttl) in _mapping(data.get("c")).items():
            if mine:
                self._claims[key] = (True, arrived + max(pttl / 1000.0 - _CLAIM_MARGIN_S, 0.0))
            else:
                wait = min(max(pttl, 0) / 1000.0, self.cache_ttl_s)
                self._claims[key] = (False, arrived + wait)
        latency = {k: float(v) for k, v in _mapping(data.get("l")).items()}
        shares: dict[int, tuple[dict[str, int], int, int]] = {}
        for size, pair in _mapping(data.get("j")).items():
            counts, total = pair
            shares[int(size)] = ({k: int(v) for k, v in _mapping(counts).items()}, int(total), top)
        self._views = views
        self._latency = latency
        self._shares = shares
        self._pulled_seq = top
        self.syncs += 1
        self._live = True
        if self._degraded:
            self._degraded = False
            logger.info(
                "hybridstack health store %s (prefix %r) reachable again: health state is "
                "shared again",
                _safe_url(self.url),
                self.prefix,
            )

    # --- housekeeping -------------------------------------------------------------------

    async def aclear(self) -> int:
        """Delete every key under this store's prefix (tests, or a fleet's fresh start)."""
        client = self._client(timeout=True)
        try:
            deleted = 0
            async for key in client.scan_iter(match=self._p + ":*", count=500):
                deleted += await client.delete(key)
            return deleted
        finally:
            await client.aclose()

    def clear(self) -> int:
        """:meth:`aclear` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.aclear())

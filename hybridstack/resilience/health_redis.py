"""Health state shared through Redis: one fleet's breakers, holds, latency and share window.

:class:`RedisHealthStore` implements :class:`~hybridstack.resilience.health.HealthStore`
over ``redis.asyncio`` (``pip install 'hybridstack[redis]'``). The calling code never
waits on Redis:

* **pushes** (outcomes, opens, closes, holds, probe claims, latency samples, served
  jurisdictions) go into a local queue; a background thread with its own event loop
  sends them in batches — at once for what changes a verdict (a failure, an open, a
  hold, a claim), every ``flush_interval_s`` for the rest;
* **every batch is one Lua script**
  (:data:`~hybridstack.resilience.health_redis_script.SYNC_SCRIPT`): it applies the batch
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

This module is the store: the :class:`~hybridstack.resilience.health.HealthStore` API
over a local queue of pushes and a local copy of the shared state. The script is
:mod:`~hybridstack.resilience.health_redis_script`; the thread, the connection and the
outage handling are :mod:`~hybridstack.resilience.health_redis_link`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import secrets
import socket
import time
from collections import deque
from typing import Any

from hybridstack.errors import ConfigurationError
from hybridstack.resilience.health import HealthStore, SharedBreaker
from hybridstack.resilience.health_redis_link import RedisLink, safe_url
from hybridstack.resilience.health_redis_script import SYNC_SCRIPT

__all__ = ["SYNC_SCRIPT", "RedisHealthStore"]

#: How long an unused probe claim stays reserved (extended to the probe's timeout once
#: the probe is actually sent).
_RESERVE_S = 2.0
#: A claim reply older than this is not trusted: ask again.
_CLAIM_MARGIN_S = 0.25
#: The most served jurisdictions kept for the share window.
_SHARE_KEEP = 10_000


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
                f"health store url {safe_url(url)!r}: expected redis://host:port/db, "
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
        self._link = RedisLink(
            self,
            url,
            prefix=prefix,
            channel=self._p + ":changed",
            cache_ttl_s=self.cache_ttl_s,
            flush_interval_s=self.flush_interval_s,
            timeout_s=self.timeout_s,
            retry_s=self.retry_s,
        )
        self._link.start()

    def __repr__(self) -> str:
        link = self._link
        state = "degraded" if link.degraded else ("live" if link.live else "connecting")
        return f"RedisHealthStore({safe_url(self.url)!r}, prefix={self.prefix!r}, {state})"

    # --- the caller's side (sync, local) ------------------------------------------------

    def _push(self, op: list[Any], key: str | None = None, *, urgent: bool = False) -> None:
        seq = next(self._seq)
        self._ops.append((seq, time.monotonic(), op))
        if key is not None:
            self._dirty[key] = seq
        if urgent:
            self._link.kick()

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
        if not self._link.live:
            return None
        view = self._views.get(key)
        if view is None or self._pulled_seq < self._dirty.get(key, 0):
            return None
        return view

    def claim_probe(self, key: str, ttl_s: float) -> bool | None:
        if not self._link.live:
            return True  # nothing shared now: the local breaker decides alone
        now = time.monotonic()
        entry = self._claims.get(key)
        if entry is not None and now < entry[1]:
            return entry[0]
        self._claims[key] = (None, now + self.timeout_s + _RESERVE_S)
        self._push(["p", key, int(_RESERVE_S * 1000)], urgent=True)
        return None

    def probe_started(self, key: str, ttl_s: float) -> None:
        if self._link.live:
            self._claims[key] = (True, time.monotonic() + max(ttl_s - _CLAIM_MARGIN_S, 0.0))
            self._push(["px", key, int(ttl_s * 1000)])

    def release_probe(self, key: str) -> None:
        if self._claims.pop(key, None) is not None:
            self._push(["u", key], urgent=True)

    def latency_sample(self, deployment: str, seconds: float, alpha: float) -> None:
        self._push(["l", deployment, seconds, alpha])

    def latency_ewma(self, deployment: str) -> float | None:
        return self._latency.get(deployment) if self._link.live else None

    def share_add(self, jurisdiction: str) -> None:
        seq = next(self._seq)
        self._ops.append((seq, time.monotonic(), ["j", jurisdiction]))
        self._share_local.append((seq, jurisdiction))

    def share_counts(self, size: int) -> tuple[dict[str, int], int] | None:
        if size not in self._share_sizes:
            self._share_sizes.add(size)
            self._link.kick()
        if not self._link.live:
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
        return self._link.degraded

    @property
    def syncs(self) -> int:
        """Round trips that reached Redis (for tests and dashboards)."""
        return self._link.syncs

    @property
    def errors(self) -> int:
        """Round trips that failed."""
        return self._link.errors

    def close(self) -> None:
        """Send what is queued (best effort, within ``timeout_s``) and stop the thread."""
        self._link.stop()

    def sync_now(self, timeout_s: float = 5.0) -> bool:
        """Block until one round trip after this call ended; True if it reached Redis.

        For tests and scripts that need the fleet's state *now*; calls never need it.
        """
        return self._link.sync_now(timeout_s)

    # --- the link's side (on its thread): the batch out, the shared state in ---------------

    def _pending(self) -> bool:
        return bool(self._ops)

    def _notified(self, data: Any) -> None:
        """Adopt the breakers another process's batch changed (the link then pulls soon)."""
        try:
            news = json.loads(data)
            if news.get("o") == self._owner:
                return
            rows = _mapping(news.get("b"))
        except (TypeError, ValueError, AttributeError):
            rows = {}
        if rows and self._link.live:
            views = dict(self._views)
            for key, view in self._rows(rows, time.monotonic(), views).items():
                old = views.get(key)
                if old is None or view.version >= old.version:  # never step back
                    views[key] = view
            self._views = views

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

    def _take_batch(self) -> tuple[list[Any], list[list[Any]], int]:
        """Dequeue every push; drop the ones that ran out and age the rest for the script."""
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

    def _script_args(self, ops: list[list[Any]]) -> list[Any]:
        return [
            self._p,
            self._owner,
            json.dumps(ops),
            json.dumps(sorted(self._share_sizes)),
            int(self.key_ttl_s * 1000),
            _SHARE_KEEP,
        ]

    def _requeue(self, taken: list[Any]) -> None:
        # Keep what was not sent (oldest first), unless the queue filled meanwhile.
        if len(self._ops) + len(taken) <= (self._ops.maxlen or 0):
            self._ops.extendleft(reversed(taken))

    def _lost(self) -> None:
        self._claims.clear()

    def _pulled(self, data: dict[str, Any], top: int, arrived: float) -> None:
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

    # --- housekeeping -------------------------------------------------------------------

    async def aclear(self) -> int:
        """Delete every key under this store's prefix (tests, or a fleet's fresh start)."""
        client = self._link.client(timeout=True)
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

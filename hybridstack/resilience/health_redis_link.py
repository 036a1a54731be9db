"""The Redis health store's connection: its thread, its sync loop, and what an outage does.

:class:`RedisLink` runs a background thread with its own event loop that moves the
store's queued pushes to Redis and the shared state back, so the calling code never
waits on Redis:

* a round trip (one run of :data:`~hybridstack.resilience.health_redis_script.SYNC_SCRIPT`)
  goes at once when the store kicks (what changes a verdict), else once the oldest
  queued push has waited ``flush_interval_s``, and at least every ``cache_ttl_s``;
* a subscription to ``<prefix>:changed`` hands the breakers another process changed to
  the store and wakes the loop for a pull;
* **outage**: any error (connection, timeout, script) marks the link down and degraded,
  logs ONE warning on the ``hybridstack.health`` logger, gives the unsent pushes back to
  the store's queue and tries again every ``retry_s``; the first round trip that works
  logs one INFO line.

What is queued and what the answer means is the store's
(:class:`~hybridstack.resilience.health_redis.RedisHealthStore`, the :class:`SyncPeer`
here); redis itself is imported only inside the thread's methods.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from hybridstack.resilience.health_redis_script import SYNC_SCRIPT

__all__ = ["RedisLink", "SyncPeer", "safe_url"]

logger = logging.getLogger("hybridstack.health")


def safe_url(url: str) -> str:
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


class SyncPeer(Protocol):
    """What the link needs from the store: its queue, the script's arguments, the answers.

    Private methods: they are for the link alone, not for the store's users.
    """

    def _pending(self) -> bool:
        """Pushes are queued."""
        ...

    def _take_batch(self) -> tuple[list[Any], list[list[Any]], int]:
        """Dequeue: (the items taken, the ops to send, the newest push seq they include)."""
        ...

    def _script_args(self, ops: list[list[Any]]) -> list[Any]:
        """The script's ``ARGV`` for one batch."""
        ...

    def _requeue(self, taken: list[Any]) -> None:
        """The batch was not sent: put what was taken back in front of the queue."""
        ...

    def _lost(self) -> None:
        """Redis went down: forget what only Redis could vouch for (probe claims)."""
        ...

    def _pulled(self, data: dict[str, Any], top: int, arrived: float) -> None:
        """The script's answer: the shared state, including pushes up to ``top``."""
        ...

    def _notified(self, data: Any) -> None:
        """A change notification's payload (another process changed breakers)."""
        ...


class RedisLink:
    """The background thread that keeps one store in step with one Redis."""

    def __init__(
        self,
        peer: SyncPeer,
        url: str,
        *,
        prefix: str,
        channel: str,
        cache_ttl_s: float,
        flush_interval_s: float,
        timeout_s: float,
        retry_s: float,
    ) -> None:
        self._peer = peer
        self.url = url
        self.prefix = prefix
        self._channel = channel
        self.cache_ttl_s = cache_ttl_s
        self.flush_interval_s = flush_interval_s
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        #: A round trip worked last (reads may trust the store's cache).
        self.live = False
        #: Redis is unreachable (set on the first failure, cleared by the next success).
        self.degraded = False
        self.stopped = False
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

    def start(self) -> None:
        """Start the thread (and wait, briefly, until it can be kicked)."""
        self._thread.start()
        self._ready.wait(5.0)

    # --- the caller's side ----------------------------------------------------------------

    def kick(self) -> None:
        """Ask for a round trip now (once per wake-up: later kicks until then are free)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or self._kicked:
            return
        self._kicked = True
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # the thread's loop is closed (store closed)
            pass

    def nudge(self) -> None:
        """:meth:`kick` even if a kick is already on its way."""
        self._kicked = False
        self.kick()

    def stop(self) -> None:
        """Send what is queued (best effort, within ``timeout_s``) and stop the thread."""
        if self.stopped:
            return
        self.stopped = True
        self.nudge()
        self._thread.join(timeout=self.timeout_s * 4 + 1.0)

    def sync_now(self, timeout_s: float = 5.0) -> bool:
        """Block until one round trip after this call ended; True if it reached Redis."""
        if self.stopped:
            return False
        target = self.syncs + self.errors
        done_at = time.monotonic() + timeout_s
        self.nudge()
        while time.monotonic() < done_at:
            if self.syncs + self.errors > target + 1 or (
                self.syncs + self.errors > target and not self._peer._pending()
            ):
                return self.live
            time.sleep(0.002)
            self.nudge()
        return False

    def client(self, *, timeout: bool) -> Any:
        """A new ``redis.asyncio`` client (no retries: a failure is an outage)."""
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
            self.live = False
            self._ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        assert self._wake is not None
        client = self.client(timeout=True)
        script = client.register_script(SYNC_SCRIPT)
        listener = asyncio.ensure_future(self._listen())
        peer = self._peer
        next_pull = 0.0
        next_flush = 0.0  # when the oldest queued non-urgent push is due (0: none queued)
        try:
            while not self.stopped:
                now = time.monotonic()
                if peer._pending() and not next_flush:
                    next_flush = now + self.flush_interval_s
                if not self.live:
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
                if self.stopped:
                    break
                now = time.monotonic()
                if not self.live and now < next_pull:
                    continue  # degraded: keep queueing until the retry time
                if not (woken or now >= next_pull or (next_flush and now >= next_flush)):
                    continue
                ok = await self._sync(script)
                next_pull = time.monotonic() + (self.cache_ttl_s if ok else self.retry_s)
                next_flush = 0.0
            if peer._pending() and self.live:
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
        while not self.stopped:
            client = self.client(timeout=False)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while not self.stopped:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._on_message(message.get("data"))
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

    def _on_message(self, data: Any) -> None:
        self._peer._notified(data)
        assert self._wake is not None
        self._wake.set()

    async def _sync(self, script: Any) -> bool:
        peer = self._peer
        taken, ops, top = peer._take_batch()
        try:
            raw = await script(keys=[], args=peer._script_args(ops))
            data = json.loads(raw)
        except Exception as error:
            peer._requeue(taken)
            self._failed(error)
            return False
        peer._pulled(data, top, time.monotonic())
        self.syncs += 1
        self.live = True
        if self.degraded:
            self.degraded = False
            logger.info(
                "hybridstack health store %s (prefix %r) reachable again: health state is "
                "shared again",
                safe_url(self.url),
                self.prefix,
            )
        return True

    def _failed(self, error: BaseException) -> None:
        self.errors += 1
        self.live = False
        self._peer._lost()
        if not self.degraded:
            self.degraded = True
            logger.warning(
                "hybridstack health store %s (prefix %r) unreachable (%s: %s): each process "
                "uses its own health state until Redis is back",
                safe_url(self.url),
                self.prefix,
                type(error).__name__,
                str(error)[:200],
            )

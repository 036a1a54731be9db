"""One SDK client per running event loop: :class:`LoopBound`.

httpx and aiohttp connection pools belong to the loop that created them, and the sync
wrappers run each call on a fresh loop, so a client must never be reused across loops.
A client is closed by ``aclose()`` or, at the latest, when its loop shuts down.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["LoopBound"]

C = TypeVar("C")


class _Entry(Generic[C]):
    """One loop's client, closed at most once."""

    __slots__ = ("client", "closed", "guard", "starter")

    def __init__(self, client: C) -> None:
        self.client = client
        self.closed = False
        self.guard: AsyncGenerator[None, None] | None = None
        #: The task that starts ``guard`` (held: the loop keeps only weak task references).
        self.starter: asyncio.Task[None] | None = None

    async def close(self, closer: Callable[[C], Awaitable[None]]) -> None:
        if not self.closed:
            self.closed = True
            await closer(self.client)


async def _close_at_loop_shutdown(
    owner: LoopBound[Any], loop: asyncio.AbstractEventLoop, entry: _Entry[Any]
) -> AsyncGenerator[None, None]:
    """Suspended for the loop's lifetime; its ``finally`` closes the client.

    ``asyncio.run`` (and hybridstack's ``iterate_sync``) call ``loop.shutdown_asyncgens()``
    before closing a loop, which runs this ``finally`` while the loop still runs. So a
    client used from ``asyncio.run(provider.complete(...))`` — as every sync facade does —
    is closed properly instead of being left to a dead loop.
    """
    try:
        yield
    finally:
        owner._forget(loop, entry)
        await entry.close(owner._closer)


class LoopBound(Generic[C]):
    """A lazily built object per running event loop, closed with that loop's help.

    The last (loop, client) pair is one tuple, so the hot path is a single identity
    check and stays consistent when threads with their own loops share a provider.
    """

    def __init__(self, factory: Callable[[], C], closer: Callable[[C], Awaitable[None]]):
        self._factory = factory
        self._closer = closer
        self._last: tuple[asyncio.AbstractEventLoop, C] | None = None
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[C]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        return self._install(loop, None)

    async def prepare(self, build_off_loop: Callable[[], C] | None) -> None:
        """Build the running loop's client now, with ``build_off_loop`` on a worker
        thread when given (else with the factory, on the loop)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if (last is not None and last[0] is loop) or build_off_loop is None:
            self.get()
            return
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is not None and not entry.closed:
                return
        built = await asyncio.to_thread(build_off_loop)
        if self._install(loop, built) is not built:
            await self._closer(built)  # a concurrent first request built one meanwhile

    def _install(self, loop: asyncio.AbstractEventLoop, built: C | None) -> C:
        """The loop's client: the existing one, else ``built``, else a new one."""
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None or entry.closed:
                # Loops closed without shutting down their async generators cannot close
                # their clients any more: forget them.
                for old in [lp for lp in self._by_loop if lp.is_closed()]:
                    del self._by_loop[old]
                entry = _Entry(self._factory() if built is None else built)
                self._by_loop[loop] = entry
                guard = _close_at_loop_shutdown(self, loop, entry)
                entry.guard = guard
                # Start it (registering it with the loop's async-generator hooks) without
                # blocking this synchronous call: it reaches its ``yield`` on the next tick.
                entry.starter = loop.create_task(_start(guard))
            self._last = (loop, entry.client)
            return entry.client

    def _forget(self, loop: asyncio.AbstractEventLoop, entry: _Entry[C]) -> None:
        with self._lock:
            if self._by_loop.get(loop) is entry:
                del self._by_loop[loop]
            last = self._last
            if last is not None and last[0] is loop:
                self._last = None

    async def close_current(self) -> None:
        """Close the client of the running loop (if one was built)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.pop(loop, None)
            last = self._last
            if last is not None and last[0] is loop:
                self._last = None
        if entry is not None:
            await entry.close(self._closer)
            if entry.guard is not None:
                await entry.guard.aclose()

    async def close_all(self) -> None:
        """Close this loop's client and forget the others (they belong to other loops)."""
        await self.close_current()
        with self._lock:
            self._by_loop.clear()
            self._last = None


async def _start(guard: AsyncGenerator[None, None]) -> None:
    try:
        await anext(guard)
    except StopAsyncIteration:  # closed before it started
        pass

"""Async work run to its end: a coroutine or an async iterator driven from synchronous
code (refusing clearly inside a running event loop), and an async iterator closed when it
is left early (:func:`closing`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def _refuse_in_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{name}() is the blocking twin for scripts and cannot run inside a running event "
        f"loop (Jupyter, an async app). Use the async form instead: "
        f"`await ...{name.removesuffix('_sync')}(...)`."
    )


def run_sync(coro: Coroutine[Any, Any, T], *, name: str) -> T:
    """Run ``coro`` to completion on a fresh event loop; refuse inside a running loop."""
    try:
        _refuse_in_loop(name)
    except RuntimeError:
        coro.close()  # avoid "coroutine was never awaited" noise
        raise
    return asyncio.run(coro)


def iterate_sync(agen: AsyncIterator[T], *, name: str) -> Iterator[T]:
    """Drive an async iterator from synchronous code on a private event loop."""
    _refuse_in_loop(name)
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                item = loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                break
            yield item
    finally:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            loop.run_until_complete(aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@contextlib.asynccontextmanager
async def closing(events: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """``contextlib.aclosing`` for any async iterator: closes it if it can be closed."""
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()

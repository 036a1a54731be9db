"""A Stack's life around its calls: warm-up at start-up, closing (``aclose``, ``async
with``) and the blocking twins of ``complete()`` and ``stream()`` for scripts.

:class:`StackLifecycle` is a base class of :class:`hybridstack.Stack`, which owns the
attributes it declares; it is not meant to be used on its own.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Self

from hybridstack._call_skill import DEFAULT_CLASSIFIER, SkillClassifierLike
from hybridstack._sync import closing, iterate_sync, run_sync
from hybridstack.catalog import Catalog, Deployment
from hybridstack.catalog.keys import KeyResolver
from hybridstack.errors import ConfigurationError
from hybridstack.ledger import Ledger
from hybridstack.resilience import ProviderPool
from hybridstack.resilience.health import HealthStore
from hybridstack.types import ChatRequest, ChatResponse, MessagesInput, StreamEvent

__all__ = ["StackLifecycle"]


class StackLifecycle:
    """Start-up, shut-down and the blocking twins of a :class:`~hybridstack.Stack`."""

    # Set by Stack.__init__.
    catalog: Catalog
    skill_classifier: SkillClassifierLike | None
    health_store: HealthStore
    _keys: KeyResolver
    _pool: ProviderPool
    #: The health store was built by the stack (from a URL or None), so it closes it.
    _owns_store: bool
    #: The ledger the stack opened from a path or URL (closed by aclose), else None.
    _own_ledger: Ledger | None
    # Stack's own calls (their full signatures are there).
    complete: Callable[..., Awaitable[ChatResponse]]
    stream: Callable[..., AsyncIterator[StreamEvent]]

    def complete_sync(self, messages: MessagesInput | ChatRequest, **kwargs: Any) -> ChatResponse:
        """Blocking twin of :meth:`complete` for scripts (refuses inside an event loop)."""
        return run_sync(self._complete_and_close(messages, **kwargs), name="complete_sync")

    async def _complete_and_close(self, messages: Any, **kwargs: Any) -> ChatResponse:
        # Each sync call runs on a fresh event loop; SDK clients are bound to a loop,
        # so release them before the loop goes away.
        try:
            return await self.complete(messages, **kwargs)
        finally:
            await self._pool.aclose()

    def stream_sync(
        self, messages: MessagesInput | ChatRequest, **kwargs: Any
    ) -> Iterator[StreamEvent]:
        """Blocking twin of :meth:`stream` for scripts (refuses inside an event loop)."""

        async def events() -> AsyncIterator[StreamEvent]:
            try:
                async with closing(self.stream(messages, **kwargs)) as stream:
                    async for event in stream:
                        yield event
            finally:
                await self._pool.aclose()

        return iterate_sync(events(), name="stream_sync")

    async def warm_up(self, deployments: Iterable[str | Deployment] | None = None) -> list[str]:
        """Import the SDKs and build the clients of this stack's deployments, off the loop.

        Call it once at start-up, inside the event loop that will serve requests (SDK
        clients belong to one loop), e.g. in a web server's lifespan hook. Without it
        the first call of each protocol loads that SDK itself (on a worker thread, so
        the loop keeps running, but that first call waits 0.5-2 s for it).

        ``deployments`` (ids or deployments): which ones; default every enabled
        deployment whose key is available. Returns the ids that were warmed; one that
        cannot be built (its key is missing) is left out, not raised.
        """
        from hybridstack.providers import load_adapters

        if deployments is None:
            chosen = [d for d in self.catalog if d.enabled and self._keys.available(d)]
        else:
            chosen = [
                d if isinstance(d, Deployment) else self.catalog.deployment(d) for d in deployments
            ]
        imports: list[Awaitable[object]] = [load_adapters(d.protocol for d in chosen)]
        if self.skill_classifier is None:
            # The default classifier runs on calls without skill=; its tables load once.
            imports.append(asyncio.to_thread(importlib.import_module, DEFAULT_CLASSIFIER))
        await asyncio.gather(*imports)
        warmed: list[str] = []
        for deployment in chosen:
            try:
                provider = await self._pool.aget(deployment)
            except ConfigurationError:
                continue
            await provider.warm_up()  # this loop's client, if aget made it for another
            warmed.append(deployment.id)
        return warmed

    async def aclose(self) -> None:
        """Close every provider client this stack opened (and a health store or a ledger
        it built from a URL or path)."""
        await self._pool.aclose()
        if self._owns_store:
            await asyncio.to_thread(self.health_store.close)
        if self._own_ledger is not None:
            ledger, self._own_ledger = self._own_ledger, None
            ledger.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

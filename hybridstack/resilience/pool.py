"""ProviderPool: one Provider (one SDK client, one connection pool) per deployment.

Clients are expensive to build and hold keep-alive connections, so the executor asks
the pool for a deployment's provider on every attempt and the pool creates it once.
The first time, :meth:`ProviderPool.aget` imports the protocol's SDK and builds the
client on worker threads, so a cold start never stalls the event loop.
``aclose()`` releases every client (call it before the event loop goes away: SDK
clients are bound to the loop they first ran on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from hybridstack.catalog.keys import KeyResolver
from hybridstack.catalog.models import Deployment

if TYPE_CHECKING:
    from hybridstack.providers.base import Provider

__all__ = ["ProviderFactory", "ProviderPool"]

logger = logging.getLogger("hybridstack.resilience")

ProviderFactory = Callable[[Deployment], "Provider"]


class ProviderPool:
    """Caches one :class:`~hybridstack.providers.base.Provider` per deployment id.

    Args:
        factory: builds a provider for a deployment. Default:
            :func:`hybridstack.providers.create_provider` with the key a
            :class:`~hybridstack.catalog.keys.KeyResolver` over ``api_keys`` resolves
            (by deployment id or by environment-variable name, else the environment).
        api_keys: keys for the default factory, or a ``KeyResolver``; held in a
            :class:`~hybridstack._secrets.SecretMapping`, never printed or pickled.
        timeout_s: per-request timeout for the default factory (default: the
            deployment's ``timeout_s``).

    A deployment whose definition changed (same id, different fields) gets a fresh
    provider; the old one is closed by :meth:`aclose`.
    """

    def __init__(
        self,
        factory: ProviderFactory | None = None,
        *,
        api_keys: Mapping[str, str] | KeyResolver | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self._factory = factory
        self._keys = api_keys if isinstance(api_keys, KeyResolver) else KeyResolver(api_keys)
        self._timeout_s = timeout_s
        self._providers: dict[str, Provider] = {}
        # The deployment each provider was requested for: the factory may hand the
        # provider an enriched copy, so compare against what callers pass, not that copy.
        self._requested: dict[str, Deployment] = {}
        self._retired: list[Provider] = []

    def __repr__(self) -> str:
        return f"ProviderPool(providers={sorted(self._providers)})"

    def __len__(self) -> int:
        return len(self._providers)

    def __contains__(self, deployment: object) -> bool:
        key = deployment.id if isinstance(deployment, Deployment) else deployment
        return key in self._providers

    def _create(self, deployment: Deployment) -> Provider:
        if self._factory is not None:
            return self._factory(deployment)
        from hybridstack.providers import create_provider

        return create_provider(deployment, keys=self._keys, timeout_s=self._timeout_s)

    def get(self, deployment: Deployment) -> Provider:
        """The deployment's provider, created on first use (factory errors propagate).

        Creating one imports its SDK on the calling thread; async callers use
        :meth:`aget`.
        """
        provider = self.ready(deployment)
        if provider is not None:
            return provider
        old = self._providers.get(deployment.id)
        if old is not None:
            self._retired.append(old)
        provider = self._create(deployment)
        self._providers[deployment.id] = provider
        self._requested[deployment.id] = deployment
        return provider

    def ready(self, deployment: Deployment) -> Provider | None:
        """The deployment's provider if it was already created, else None (no I/O)."""
        provider = self._providers.get(deployment.id)
        if provider is not None:
            requested = self._requested[deployment.id]
            if requested is deployment or requested == deployment:
                return provider
        return None

    async def aget(self, deployment: Deployment) -> Provider:
        """:meth:`get` without blocking the event loop on a first use.

        The protocol's SDK is imported on a worker thread (once per process) and the
        provider's client built on one, before the provider is returned.
        """
        provider = self.ready(deployment)
        if provider is not None:
            return provider
        from hybridstack.errors import ConfigurationError
        from hybridstack.providers import load_adapter

        try:
            await load_adapter(deployment.protocol)
        except ConfigurationError:
            pass  # get() raises it again, naming the deployment
        provider = self.get(deployment)
        warm_up = getattr(provider, "warm_up", None)  # factories may return duck types
        if warm_up is not None:
            await warm_up()
        return provider

    def providers(self) -> dict[str, Provider]:
        """The providers created so far, by deployment id."""
        return dict(self._providers)

    async def aclose(self) -> None:
        """Close every provider's client; the pool can be used again afterwards."""
        providers = [*self._providers.values(), *self._retired]
        self._providers.clear()
        self._requested.clear()
        self._retired.clear()
        if not providers:
            return
        results = await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)
        for provider, result in zip(providers, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("closing %r failed: %s", provider, type(result).__name__)

    async def __aenter__(self) -> ProviderPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""The provider layer's front door: build the right adapter for a deployment.

``create_provider`` picks the adapter by ``deployment.protocol`` and imports its module
only then, so ``import hybridstack.providers`` never imports openai, anthropic or
dashscope (each costs a noticeable start-up time and most stacks use one or two).

Importing an SDK takes 0.4-2 s of CPU. Done on the event loop, that stalls every other
task of the process for as long (timers, streams, the emulator, other calls), so async
callers use :func:`load_adapter`: the import runs once per protocol on a worker thread
and concurrent first callers all wait for that one import.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hybridstack._secrets import install_log_filter
from hybridstack.catalog.keys import ENVIRONMENT_KEYS, KEYLESS, KeyResolver
from hybridstack.errors import ConfigurationError
from hybridstack.providers.base import DEFAULT_MAX_TOKENS, Provider

if TYPE_CHECKING:
    from hybridstack.catalog.models import Deployment

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Provider",
    "adapter_class",
    "create_provider",
    "load_adapter",
    "load_adapters",
    "resolve_api_key",
]

#: protocol -> (module, class, SDK package). Modules are imported on first use.
_ADAPTERS: dict[str, tuple[str, str, str]] = {
    "openai": ("hybridstack.providers.openai", "OpenAIProvider", "openai"),
    "anthropic": ("hybridstack.providers.anthropic", "AnthropicProvider", "anthropic"),
    "dashscope": ("hybridstack.providers.dashscope", "DashScopeProvider", "dashscope"),
}

#: Modules the SDKs' HTTP stacks import lazily on the first request (found by diffing
#: sys.modules around a first call); the SDK's own lazy resources are touched by the
#: adapter's ``warm_up``. Best effort: a name a later version dropped is skipped.
_FIRST_REQUEST_MODULES: dict[str, tuple[str, ...]] = {
    "openai": ("anyio._backends._asyncio",),
    "anthropic": ("anyio._backends._asyncio", "opentelemetry.propagate"),
    "dashscope": (),
}

#: Sent as the key to endpoints that need none (:data:`hybridstack.catalog.keys.KEYLESS`).
PLACEHOLDER_API_KEY = KEYLESS

#: One import per protocol, shared by every caller on every event loop (a sync facade
#: runs each call on a fresh loop, so an asyncio future or lock would not do).
_loading: dict[str, concurrent.futures.Future[type[Provider]]] = {}
_loading_lock = threading.Lock()


def resolve_api_key(deployment: Deployment, api_key: str | None = None) -> str:
    """The key for ``deployment``: the argument, else the deployment's own, else its env var
    (:class:`~hybridstack.catalog.keys.KeyResolver` without keys given in code).

    Raises :class:`~hybridstack.errors.MissingAPIKeyError` when the deployment names a
    variable that is unset (or empty).
    """
    return ENVIRONMENT_KEYS.resolve(deployment, api_key)


def _adapter_spec(protocol: str) -> tuple[str, str, str]:
    try:
        return _ADAPTERS[protocol]
    except KeyError:
        raise ConfigurationError(
            f"unknown protocol {protocol!r}; known: {', '.join(sorted(_ADAPTERS))}"
        ) from None


def adapter_class(protocol: str) -> type[Provider]:
    """The adapter class for ``protocol``, importing its SDK on the calling thread.

    Async code should ``await load_adapter(protocol)`` instead (the import then runs
    off the event loop); after that, this returns at once.
    """
    module_name, class_name, package = _adapter_spec(protocol)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {protocol!r} protocol needs the {package!r} package, which did not import "
            f"({type(exc).__name__}: {exc}); reinstall hybridstack or `pip install {package}`"
        ) from exc
    for name in _FIRST_REQUEST_MODULES.get(protocol, ()):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    adapter: type[Provider] = getattr(module, class_name)
    return adapter


def _import_into(protocol: str, future: concurrent.futures.Future[type[Provider]]) -> None:
    try:
        result = adapter_class(protocol)
    except BaseException as exc:  # handed to every waiter, never lost on this thread
        with _loading_lock:
            # A failed import is not cached: a later call tries again.
            if _loading.get(protocol) is future:
                del _loading[protocol]
        future.set_exception(exc)
    else:
        future.set_result(result)


async def load_adapter(protocol: str) -> type[Provider]:
    """The adapter class for ``protocol``, its SDK imported on a worker thread, once.

    Concurrent first callers (from any event loop or thread) wait for the same import;
    the event loop keeps running meanwhile. Raises :class:`ConfigurationError` for an
    unknown protocol or an SDK that does not import.
    """
    _adapter_spec(protocol)
    with _loading_lock:
        future = _loading.get(protocol)
        if future is None:
            future = _loading[protocol] = concurrent.futures.Future()
            # Running before any waiter exists, so a waiter's cancellation (asyncio's
            # wrap_future cancels the concurrent future) cannot cancel the import.
            future.set_running_or_notify_cancel()
            threading.Thread(
                target=_import_into,
                args=(protocol, future),
                name=f"hybridstack-import-{protocol}",
                daemon=True,
            ).start()
    if future.done():
        return future.result()
    return await asyncio.wrap_future(future)


async def load_adapters(protocols: Iterable[str]) -> None:
    """Import the SDKs of several protocols off the event loop (see :func:`load_adapter`)."""
    await asyncio.gather(*(load_adapter(p) for p in dict.fromkeys(protocols)))


def create_provider(
    deployment: Deployment,
    *,
    api_key: str | None = None,
    timeout_s: float | None = None,
    keys: KeyResolver | None = None,
) -> Provider:
    """A :class:`Provider` for ``deployment`` over its wire protocol's official SDK.

    The key is ``api_key`` when given, else what ``keys`` (default: the deployment and
    the environment) resolves; a missing one raises
    :class:`~hybridstack.errors.MissingAPIKeyError`. ``timeout_s`` overrides
    ``deployment.timeout_s`` (per attempt). The SDK client is built lazily on first use,
    once per event loop (``await provider.warm_up()`` builds it ahead, off the loop).
    The SDK is imported here if :func:`load_adapter` has not.
    """
    try:
        _adapter_spec(deployment.protocol)
    except ConfigurationError as exc:
        raise ConfigurationError(f"deployment {deployment.id!r}: {exc}") from None
    key = (keys or ENVIRONMENT_KEYS).resolve(deployment, api_key)
    adapter_cls = adapter_class(deployment.protocol)
    # From the first provider on, hybridstack and SDK log records are scrubbed as made.
    install_log_filter()
    provider: Provider = adapter_cls(deployment, api_key=key, timeout_s=timeout_s)
    return provider

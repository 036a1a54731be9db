"""Testing helpers shipped with hybridstack: the provider emulator and offline stacks.

Use these to test your own agent apps without network or keys: the emulator speaks the
OpenAI, Anthropic and DashScope wire formats on loopback, so the real SDK clients, and
hybridstack's retries, breakers and fail-over, run their production code paths. Only
the model text is simulated.

    async with offline_stack() as stack:
        stack.emulator.set_outage(["qwen-plus@dashscope-cn"], True)   # a regional outage
        reply = await stack.complete("Terjemahkan ke bahasa Inggris: terima kasih")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from hybridstack.catalog import Catalog
    from hybridstack.stack import Stack
    from hybridstack.testing.emulator import (
        EmulatedDeployment,
        Emulator,
        EmulatorConfig,
        EmulatorCounters,
        FaultProfile,
    )

_EMULATOR_NAMES = {
    "EmulatedDeployment",
    "Emulator",
    "EmulatorConfig",
    "EmulatorCounters",
    "FaultProfile",
}


def __getattr__(name: str) -> Any:
    # The emulator (aiohttp) loads on first use, so importing the pytest plugin is cheap.
    if name in _EMULATOR_NAMES:
        from hybridstack.testing import emulator

        return getattr(emulator, name)
    raise AttributeError(f"module 'hybridstack.testing' has no attribute {name!r}")


__all__ = [
    "OFFLINE_API_KEY",
    "EmulatedDeployment",
    "Emulator",
    "EmulatorConfig",
    "EmulatorCounters",
    "FaultProfile",
    "emulator_config_for",
    "offline_catalog",
    "offline_stack",
    "offline_stack_sync",
]

#: The fake key every offline deployment uses (the emulator accepts any key by default).
OFFLINE_API_KEY = "sk-hybridstack-offline-emulator"


def emulator_config_for(
    catalog: Catalog,
    *,
    faults: Mapping[str, FaultProfile | Mapping[str, Any]] | None = None,
    default_faults: FaultProfile | Mapping[str, Any] | None = None,
    seed: int = 0,
    include: Iterable[str] | None = None,
) -> EmulatorConfig:
    """An emulator config with one emulated deployment per catalog deployment.

    ``faults`` maps a deployment id (``family@site``) to its fault profile;
    ``default_faults`` applies to all others; ``include`` limits which deployments.
    """
    wanted = set(include) if include is not None else None
    faults = dict(faults or {})

    from hybridstack.testing.emulator import EmulatedDeployment, EmulatorConfig, FaultProfile

    def profile(value: FaultProfile | Mapping[str, Any] | None) -> FaultProfile:
        if value is None:
            return FaultProfile()
        return value if isinstance(value, FaultProfile) else FaultProfile(**value)

    unknown = set(faults) - {d.id for d in catalog}
    if unknown:
        raise ValueError(f"faults name deployments that are not in the catalog: {sorted(unknown)}")
    deployments = [
        EmulatedDeployment(
            name=d.id,
            protocol=d.protocol,
            model=d.model,
            faults=profile(faults.get(d.id, default_faults)),
        )
        for d in catalog
        if wanted is None or d.id in wanted
    ]
    return EmulatorConfig(deployments=deployments, seed=seed)


def offline_catalog(catalog: Catalog, emulator: Emulator) -> Catalog:
    """A copy of ``catalog`` whose deployments all point at ``emulator`` with a fake key."""
    served = set(emulator.deployment_names())
    moved = [
        d.model_copy(
            update={
                "base_url": emulator.base_url(d.id),
                "api_key": SecretStr(OFFLINE_API_KEY),
            }
        )
        for d in catalog
        if d.id in served
    ]
    # with_entries keeps the catalog's sites and retired-name hints; same id replaces.
    missing = [d.id for d in catalog if d.id not in served]
    pointed = catalog.with_entries(deployments=moved, source="<emulator>")
    return pointed.without(*missing) if missing else pointed


@contextlib.asynccontextmanager
async def offline_stack(
    catalog: Catalog | None = None,
    *,
    faults: Mapping[str, FaultProfile | Mapping[str, Any]] | None = None,
    default_faults: FaultProfile | Mapping[str, Any] | None = None,
    emulator_seed: int = 0,
    **stack_options: Any,
) -> AsyncIterator[Stack]:
    """A :class:`~hybridstack.Stack` over an in-process emulator of every catalog deployment.

    The yielded stack has an extra attribute ``emulator`` for run-time fault control and
    counters. Everything but the model text is the production code path.
    """
    from hybridstack.catalog import Catalog as _Catalog
    from hybridstack.stack import Stack
    from hybridstack.testing.emulator import Emulator

    base = catalog if catalog is not None else _Catalog.default()
    config = emulator_config_for(
        base, faults=faults, default_faults=default_faults, seed=emulator_seed
    )
    async with Emulator(config) as emulator:
        stack = Stack(offline_catalog(base, emulator), **stack_options)
        stack.emulator = emulator  # type: ignore[attr-defined]
        try:
            yield stack
        finally:
            await stack.aclose()


@contextlib.contextmanager
def offline_stack_sync(
    catalog: Catalog | None = None,
    *,
    faults: Mapping[str, FaultProfile | Mapping[str, Any]] | None = None,
    default_faults: FaultProfile | Mapping[str, Any] | None = None,
    emulator_seed: int = 0,
    **stack_options: Any,
) -> Iterator[Stack]:
    """Like :func:`offline_stack`, for scripts: the emulator runs on a background thread."""
    from hybridstack.catalog import Catalog as _Catalog
    from hybridstack.stack import Stack
    from hybridstack.testing.emulator import Emulator

    base = catalog if catalog is not None else _Catalog.default()
    config = emulator_config_for(
        base, faults=faults, default_faults=default_faults, seed=emulator_seed
    )
    with Emulator(config) as emulator:
        stack = Stack(offline_catalog(base, emulator), **stack_options)
        stack.emulator = emulator  # type: ignore[attr-defined]
        yield stack

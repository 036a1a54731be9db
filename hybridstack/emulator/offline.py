"""Stacks over an in-process emulator of every catalog deployment: the offline default of
the CLI, the demo and tests. Everything but the model text is the production code path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hybridstack.emulator.catalogs import emulator_config_for, offline_catalog
from hybridstack.emulator.config import EmulatorConfig, FaultProfile
from hybridstack.stack import Stack

if TYPE_CHECKING:
    from hybridstack.catalog import Catalog
    from hybridstack.emulator.server import Emulator

__all__ = ["OfflineStack", "offline_stack", "offline_stack_sync"]


class OfflineStack(Stack):
    """A :class:`~hybridstack.Stack` over an emulator; ``emulator`` controls its faults
    (outages, scripts) and reads its counters at run time."""

    def __init__(self, catalog: Catalog, emulator: Emulator, **stack_options: Any) -> None:
        super().__init__(offline_catalog(catalog, emulator), **stack_options)
        self.emulator = emulator


def _config(
    catalog: Catalog | None,
    faults: Mapping[str, FaultProfile | Mapping[str, Any]] | None,
    default_faults: FaultProfile | Mapping[str, Any] | None,
    seed: int,
) -> tuple[Catalog, EmulatorConfig]:
    from hybridstack.catalog import Catalog as _Catalog

    base = catalog if catalog is not None else _Catalog.default()
    return base, emulator_config_for(base, faults=faults, default_faults=default_faults, seed=seed)


@contextlib.asynccontextmanager
async def offline_stack(
    catalog: Catalog | None = None,
    *,
    faults: Mapping[str, FaultProfile | Mapping[str, Any]] | None = None,
    default_faults: FaultProfile | Mapping[str, Any] | None = None,
    emulator_seed: int = 0,
    **stack_options: Any,
) -> AsyncIterator[OfflineStack]:
    """A :class:`~hybridstack.Stack` over an in-process emulator of every catalog deployment.

    The yielded :class:`OfflineStack` has an attribute ``emulator`` for run-time fault
    control and counters. Everything but the model text is the production code path.
    """
    from hybridstack.emulator.server import Emulator

    base, config = _config(catalog, faults, default_faults, emulator_seed)
    async with Emulator(config) as emulator:
        stack = OfflineStack(base, emulator, **stack_options)
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
) -> Iterator[OfflineStack]:
    """Like :func:`offline_stack`, for scripts: the emulator runs on a background thread."""
    from hybridstack.emulator.server import Emulator

    base, config = _config(catalog, faults, default_faults, emulator_seed)
    with Emulator(config) as emulator:
        stack = OfflineStack(base, emulator, **stack_options)
        yield stack

"""A catalog's deployments, emulated: the emulator config that serves them, and the copy of
the catalog that points at a running emulator with a fake key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from hybridstack.emulator.config import EmulatedDeployment, EmulatorConfig, FaultProfile

if TYPE_CHECKING:
    from hybridstack.catalog import Catalog
    from hybridstack.emulator.server import Emulator

__all__ = ["OFFLINE_API_KEY", "emulator_config_for", "offline_catalog"]

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

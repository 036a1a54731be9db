"""Picking the health store a user asked for: None, ``"memory"``, a Redis URL or a store.

Apart from :mod:`hybridstack.resilience.health` (the seam) and
:mod:`hybridstack.resilience.health_redis` (one store), so that neither imports the other
in both directions.
"""

from __future__ import annotations

from hybridstack.errors import ConfigurationError
from hybridstack.resilience.health import HealthStore, MemoryHealthStore

__all__ = ["health_store_from"]


def health_store_from(value: HealthStore | str | None, *, prefix: str | None = None) -> HealthStore:
    """A store from what ``Stack(health_store=...)`` accepts: None, a URL or a store."""
    if value is None or value == "memory":
        return MemoryHealthStore()
    if isinstance(value, HealthStore):
        return value
    if isinstance(value, str):
        if value.startswith(("redis://", "rediss://", "unix://")):
            from hybridstack.resilience.health_redis import RedisHealthStore

            if prefix is None:
                return RedisHealthStore(value)
            return RedisHealthStore(value, prefix=prefix)
        raise ConfigurationError(
            f"health_store {value!r}: expected 'memory' or a Redis URL such as "
            "'redis://127.0.0.1:6379/0' (or a HealthStore object)"
        )
    raise ConfigurationError(
        "health_store must be None, 'memory', a Redis URL or a HealthStore, "
        f"got {type(value).__name__}"
    )

"""The health-state seam: where breakers, holds, latency and the share window are shared.

A :class:`HealthStore` is what the breakers (:mod:`~hybridstack.resilience.breaker`),
the latency tracker (:mod:`~hybridstack.resilience.latency`) and the router's
jurisdiction-share window tell about what they saw, and ask about what *other* processes
saw. Every method is synchronous and local: a push only queues, a read only looks at a
cache, so the hot path never waits on the network.

* :class:`MemoryHealthStore` (the default) shares nothing: every process keeps its own
  state, exactly as before the seam existed.
* :class:`~hybridstack.resilience.health_redis.RedisHealthStore` shares the state of
  every process pointed at one Redis (``Stack(health_store="redis://...")`` or
  ``[health] url`` in ``hybridstack.toml``).

What a breaker reads back is a :class:`SharedBreaker`: the fleet's verdict (open until
when, held until when). Times in it are *remaining* seconds measured on the store's
clock (Redis's ``TIME``), stamped with this host's monotonic clock when they arrived, so
no two hosts' wall clocks are ever compared.

:func:`~hybridstack.resilience.health_stores.health_store_from` turns what a user passes
(None, a URL, a store) into a store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = [
    "HealthStore",
    "MemoryHealthStore",
    "SharedBreaker",
    "breaker_key",
]


def breaker_key(kind: str, name: str) -> str:
    """The store's name for a breaker: ``d:<deployment id>`` or ``s:<quota scope>``."""
    return ("s:" if kind == "quota_scope" else "d:") + name


@dataclass(frozen=True, slots=True)
class SharedBreaker:
    """The fleet's view of one breaker, as last pulled from the store."""

    #: The store's version of the breaker's state machine (bumped by every open/close).
    version: int
    #: Open (cooling down or, once ``open_for_s`` ran out, half-open) or closed.
    open: bool
    #: Seconds the breaker was still cooling down when the view was pulled.
    open_for_s: float
    cooldown_s: float
    failover: bool
    #: Seconds a Retry-After / throttle hold still had to run when pulled.
    held_for_s: float
    #: ``time.monotonic()`` when the view arrived (ages ``open_for_s``/``held_for_s``).
    at: float
    #: The push sequence number the view includes (views older than a local push wait).
    seq: int = 0

    def remaining(self, seconds: float, now: float | None = None) -> float:
        """``seconds`` (from this view) less the time since it arrived."""
        return seconds - ((time.monotonic() if now is None else now) - self.at)


class HealthStore:
    """The seam. This base class shares nothing (see :class:`MemoryHealthStore`).

    Subclasses override the methods; every one must be quick, must not block on I/O and
    must never raise into a call (an unreachable backend degrades to local state).
    """

    #: True when other processes' state can arrive through this store.
    shared: bool = False

    # --- breakers: pushes ----------------------------------------------------------

    def breaker_outcome(self, key: str, failed: bool, settings: object) -> None:
        """One outcome judged by a closed breaker (``settings``: its BreakerSettings)."""

    def breaker_opened(self, key: str, cooldown_s: float, failover: bool) -> None:
        """The breaker opened (or was pushed further open) for ``cooldown_s``."""

    def breaker_closed(self, key: str, force: bool = False) -> None:
        """The breaker closed: a probe answered (``force=True``: a reset by hand)."""

    def hold(self, key: str, seconds: float) -> None:
        """Hold the breaker for ``seconds`` (Retry-After): no request until it elapses."""

    # --- breakers: reads -----------------------------------------------------------

    def breaker_view(self, key: str) -> SharedBreaker | None:
        """The fleet's view of the breaker, or None (nothing shared, or not yet known)."""
        return None

    def claim_probe(self, key: str, ttl_s: float) -> bool | None:
        """May this process send the breaker's probe? True yes, False another process
        owns it, None not known yet (ask again shortly). Local stores always say True."""
        return True

    def probe_started(self, key: str, ttl_s: float) -> None:
        """The claimed probe went out: keep the claim for up to ``ttl_s``."""

    def release_probe(self, key: str) -> None:
        """The probe has its verdict (or was cancelled): free the claim."""

    # --- latency -------------------------------------------------------------------

    def latency_sample(self, deployment: str, seconds: float, alpha: float) -> None:
        """One measured latency, folded into the shared EWMA with ``alpha``."""

    def latency_ewma(self, deployment: str) -> float | None:
        """The shared EWMA in seconds, or None (use the local one)."""
        return None

    # --- the diversified policy's jurisdiction-share window --------------------------

    def share_add(self, jurisdiction: str) -> None:
        """One served call counted for ``jurisdiction``."""

    def share_counts(self, size: int) -> tuple[dict[str, int], int] | None:
        """Counts per jurisdiction of the last ``size`` calls and their total, or None."""
        return None

    # --- lifecycle -----------------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while a shared backend is unreachable and local state decides."""
        return False

    def close(self) -> None:
        """Flush what is queued (best effort) and stop any background work."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MemoryHealthStore(HealthStore):
    """The default: nothing is shared, every process decides from its own state."""

"""The passes after the order: the jurisdiction cap, then health. They move, never exclude.

* **Diversify**: a jurisdiction whose share of the last ``window`` answered calls is at
  or over the policy's cap moves behind every other candidate (:class:`ShareWindow`
  counts the recent calls).
* **Health**: a deployment whose breaker is open moves last; a half-open one stays,
  with a note that a trial call is allowed.

Sovereignty exclusions are final: nothing here brings an excluded deployment back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hybridstack.catalog.models import Deployment
from hybridstack.routing.orders import Ranked

__all__ = ["ShareWindow", "diversify", "health_pass"]

HealthFn = Callable[[Deployment], str]

_CAPPED = (
    "diversified: {0} had {1:.0%} of the last {2} calls (cap {3:.0%}): "
    "moved behind other jurisdictions, kept as fall-back"
)
_BREAKER_OPEN = "breaker open: moved last"
_HALF_OPEN = "breaker half-open: trial call allowed"


class ShareWindow:
    """Counts of the last ``size`` recorded jurisdictions."""

    __slots__ = ("counts", "ring")

    def __init__(self, size: int, history: Sequence[str]) -> None:
        self.ring: deque[str] = deque(maxlen=size)
        self.counts: dict[str, int] = {}
        for j in list(history)[-size:]:
            self.add(j)

    def add(self, jurisdiction: str) -> None:
        ring = self.ring
        if len(ring) == ring.maxlen:
            old = ring[0]
            self.counts[old] -= 1
        ring.append(jurisdiction)
        self.counts[jurisdiction] = self.counts.get(jurisdiction, 0) + 1


def diversify(
    rows: list[Ranked],
    counts: Mapping[str, int],
    total: int,
    cap: float,
    extra: dict[str, list[Any]],
) -> list[Ranked]:
    """Rows whose jurisdiction is at or over ``cap`` of the last ``total`` calls (``counts``
    per jurisdiction) moved behind the rest."""
    if not total:
        return rows
    kept: list[Ranked] = []
    moved: list[Ranked] = []
    for row in rows:
        share = counts.get(row.entry.jurisdiction, 0) / total
        (moved if share >= cap else kept).append(row)
    if not kept or not moved:
        return rows  # every candidate is capped (or none is): the order stands
    for row in moved:
        e = row.entry
        share = counts[e.jurisdiction] / total
        extra.setdefault(e.id, []).append((_CAPPED, (e.jurisdiction, share, total, cap)))
    return kept + moved


def health_pass(
    rows: list[Ranked], health: HealthFn, extra: dict[str, list[Any]], health_of: dict[str, str]
) -> list[Ranked]:
    """Rows with an open breaker moved last; ``health_of`` gets every state not closed."""
    kept: list[Ranked] = []
    moved: list[Ranked] = []
    for row in rows:
        e = row.entry
        state = health(e.deployment)
        if state != "closed":
            state = str(getattr(state, "value", state))
            health_of[e.id] = state
            if state == "open":
                extra.setdefault(e.id, []).append(_BREAKER_OPEN)
                moved.append(row)
                continue
            if state == "half_open":
                extra.setdefault(e.id, []).append(_HALF_OPEN)
        kept.append(row)
    return kept + moved if moved else kept

"""Measured latency per deployment: an EWMA and a p95 over a small ring buffer.

The executor calls :meth:`LatencyTracker.observe` after every answered attempt; the
router's ``fastest`` policy reads :meth:`LatencyTracker.ewma`. Nothing here imports
another hybridstack module, and reads take no lock (a float attribute read is atomic),
so the router's hot path pays a dict look-up per deployment and nothing more.

* **EWMA** — ``new = alpha * sample + (1 - alpha) * old``; the first sample seeds it.
  ``alpha=0.3`` weighs roughly the last five attempts, so a region that slows down is
  noticed within a few calls without one outlier dominating.
* **p95** — nearest-rank percentile over the last ``window`` samples (default 100).

With a shared :class:`~hybridstack.resilience.health.HealthStore` (``store=``) every
sample is also pushed to the store, and :meth:`LatencyTracker.ewma` answers the fleet's
EWMA (from the store's local cache) when it has one; percentiles and counts stay local.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridstack.resilience.health import HealthStore

__all__ = ["LatencyTracker"]


def _key(deployment: Any) -> str:
    """Accept a deployment id (``family@site``) or anything with an ``id`` (a Deployment)."""
    return deployment if isinstance(deployment, str) else deployment.id


class _Series:
    __slots__ = ("count", "ewma", "pos", "samples")

    def __init__(self) -> None:
        self.ewma: float | None = None
        self.samples: list[float] = []
        self.pos = 0
        self.count = 0


class LatencyTracker:
    """Per-deployment latency statistics: EWMA (for routing) and p95 (for display).

    Args:
        alpha: EWMA smoothing factor in (0, 1]; higher follows recent samples faster.
        window: how many recent samples the ring buffer keeps for percentiles.
        store: a shared health store for the EWMA (default: this process's own).
    """

    __slots__ = ("_lock", "_series", "_store", "alpha", "window")

    def __init__(
        self, *, alpha: float = 0.3, window: int = 100, store: HealthStore | None = None
    ) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.alpha = alpha
        self.window = window
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()
        self._store = store if store is not None and store.shared else None

    def observe(self, deployment: Any, seconds: float) -> None:
        """Record one measured latency (seconds) for a deployment id or Deployment."""
        if not math.isfinite(seconds) or seconds < 0:
            return  # a clock glitch must not poison the average
        key = _key(deployment)
        if self._store is not None:
            self._store.latency_sample(key, seconds, self.alpha)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series()
            series.ewma = (
                seconds
                if series.ewma is None
                else self.alpha * seconds + (1.0 - self.alpha) * series.ewma
            )
            if len(series.samples) < self.window:
                series.samples.append(seconds)
            else:
                series.samples[series.pos] = seconds
            series.pos = (series.pos + 1) % self.window
            series.count += 1

    def ewma(self, deployment: Any) -> float | None:
        """The smoothed latency in seconds, or None when never measured."""
        key = _key(deployment)
        if self._store is not None:
            shared = self._store.latency_ewma(key)
            if shared is not None:
                return shared
        series = self._series.get(key)
        return None if series is None else series.ewma

    def p95(self, deployment: Any) -> float | None:
        """95th percentile (nearest rank) of the recent samples, or None."""
        return self.percentile(deployment, 95.0)

    def percentile(self, deployment: Any, q: float) -> float | None:
        """Nearest-rank percentile ``q`` (0-100] of the recent samples, or None."""
        if not 0.0 < q <= 100.0:
            raise ValueError(f"q must be in (0, 100], got {q}")
        series = self._series.get(_key(deployment))
        if series is None:
            return None
        with self._lock:
            ordered = sorted(series.samples)
        if not ordered:
            return None
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]

    def count(self, deployment: Any) -> int:
        """How many samples were ever observed for the deployment."""
        series = self._series.get(_key(deployment))
        return 0 if series is None else series.count

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        """``{deployment id: {"ewma", "p95", "count"}}`` for display and traces."""
        return {
            key: {"ewma": self.ewma(key), "p95": self.p95(key), "count": self.count(key)}
            for key in list(self._series)
        }

    def reset(self, deployment: Any | None = None) -> None:
        """Forget one deployment's samples, or all of them."""
        with self._lock:
            if deployment is None:
                self._series.clear()
            else:
                self._series.pop(_key(deployment), None)

    def __repr__(self) -> str:
        return (
            f"LatencyTracker(deployments={len(self._series)}, "
            f"alpha={self.alpha}, window={self.window})"
        )

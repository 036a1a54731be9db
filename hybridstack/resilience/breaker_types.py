"""The breakers' value types: states, tickets, admissions, blocks and info snapshots.

Plain frozen data, shared by :mod:`~hybridstack.resilience.breaker_circuit` (one
breaker), :mod:`~hybridstack.resilience.breaker_registry` (all of them) and the
executor that hands tickets back with each outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "BreakerAdmission",
    "BreakerBlock",
    "BreakerInfo",
    "BreakerState",
    "BreakerTicket",
    "Clock",
]

BreakerState = Literal["closed", "open", "half_open"]

CLOSED: BreakerState = "closed"
OPEN: BreakerState = "open"
HALF_OPEN: BreakerState = "half_open"

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class BreakerTicket:
    """One granted request on one breaker: hand it back with the outcome."""

    #: The request's place in the order requests were sent through this breaker.
    seq: int
    #: The state it went out under (``"half_open"`` for every probe).
    state: BreakerState
    #: A probe: its verdict closes or re-opens the breaker.
    probe: bool = False


@dataclass(frozen=True, slots=True)
class BreakerAdmission:
    """A request granted by :meth:`BreakerRegistry.admit`: the deployment's and scope's tickets."""

    #: ``"half_open"`` if either breaker let it through as a probe, else ``"closed"``.
    state: BreakerState
    own: BreakerTicket
    scope: BreakerTicket


@dataclass(frozen=True, slots=True)
class BreakerBlock:
    """Why a breaker refused a request now, and when it may let one through."""

    breaker: str
    #: ``"open"`` (cooling down), ``"half_open"`` (a probe is in flight), ``"hold"``
    #: (Retry-After: the provider named the time) or ``"warmup"`` (a deployment that
    #: has not answered yet already has its share of requests in flight).
    reason: Literal["open", "half_open", "hold", "warmup"]
    #: Seconds until the breaker may allow a request (None: unknown — a probe is out).
    retry_in_s: float | None
    scope: bool = False
    #: For ``"open"``/``"half_open"``: seconds until a call with no other candidate left
    #: should ask again with ``last_resort=True`` (an early probe may be due, or the
    #: verdict of the probe in flight). None for holds and the warm-up cap.
    last_resort_in_s: float | None = None

    def describe(self) -> str:
        what = "quota scope" if self.scope else "circuit breaker"
        if self.reason == "hold":
            text = f"{what} {self.breaker} held by Retry-After"
        elif self.reason == "half_open":
            text = f"{what} {self.breaker} half-open with its probe in flight"
        elif self.reason == "warmup":
            text = f"{what} {self.breaker} has not answered yet and has enough requests in flight"
        else:
            text = f"{what} {self.breaker} open"
        if self.retry_in_s is not None:
            text += f" (retry in {self.retry_in_s:.2f}s)"
        return text


@dataclass(frozen=True, slots=True)
class BreakerInfo:
    """A breaker's state for dashboards and alerting (a snapshot; it does not update)."""

    name: str
    kind: Literal["deployment", "quota_scope"]
    #: The state a router should act on: ``"open"`` also while a Retry-After hold lasts.
    state: BreakerState
    #: The breaker's own state machine, without holds.
    breaker_state: BreakerState
    #: Failures among the requests sent after the newest success (the failure run).
    consecutive_failures: int
    #: The cool-down the breaker opened with last (the next failed probe multiplies it).
    cooldown_s: float
    #: Seconds until it lets a request through: 0 when it does now, None when a
    #: half-open probe is in flight.
    retry_in_s: float | None
    #: Seconds left of a Retry-After hold (0 when none).
    held_for_s: float
    times_opened: int
    failures: int
    successes: int
    last_error: str | None
    #: For a deployment: its quota scope; for a scope: the deployments seen in it.
    scope: str | None = None
    members: tuple[str, ...] = ()
    #: Outcomes in the window now (see ``BreakerSettings.window_s``/``window_size``) ...
    window_requests: int = 0
    #: ... how many of them failed ...
    window_failures: int = 0
    #: ... and their share (None while the window is empty).
    failure_rate: float | None = None
    #: Probe requests out now.
    probes_in_flight: int = 0
    #: Opened by a fail-over error (key, quota, retired model): no early probes.
    failover: bool = False

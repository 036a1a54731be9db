"""Resilience settings: small frozen value types with explicit defaults.

Like httpx's ``Timeout`` and ``Limits``, each is a plain immutable value: build one
once, share it between stacks, compare and print it. Nothing here does I/O. A value
out of range (negative, inf, NaN, a bool for a count) raises
:class:`~hybridstack.errors.ConfigurationError` (a ``ValueError``) naming the field.

* :class:`RetrySettings` — retries per deployment, backoff, Retry-After cap, and
  whether a retry-here error fails over first (``prefer_failover``).
* :class:`BreakerSettings` — circuit breakers per deployment and per quota scope.
* :class:`Budget` — one call's deadline, attempt count and spend.
* :class:`HedgeSettings` — opt-in hedged requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tenacity import wait_exponential_jitter
from tenacity.wait import wait_base

from hybridstack.errors import ConfigurationError

__all__ = ["BreakerSettings", "Budget", "HedgeSettings", "RetrySettings"]


class _RetryState:
    """The one field of tenacity's ``RetryCallState`` its wait strategies read."""

    __slots__ = ("attempt_number",)

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


def _number(value: object) -> bool:
    """A finite int or float (not a bool): inf and NaN are always typos here, and NaN
    slips through every comparison a cap or a backoff makes."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _unbounded_hint(value: object, optional: bool) -> str:
    infinite = isinstance(value, float) and math.isinf(value)
    return "; use None for no limit" if optional and infinite else ""


def _non_negative(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is not None and (not _number(value) or value < 0):
        raise ConfigurationError(
            f"{name} must be a finite number >= 0, not {value!r}" + _unbounded_hint(value, optional)
        )


def _positive(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is not None and (not _number(value) or value <= 0):
        raise ConfigurationError(
            f"{name} must be a finite number > 0, not {value!r}" + _unbounded_hint(value, optional)
        )


def _whole(name: str, value: object, *, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive" if minimum == 1 else "a non-negative"
        raise ConfigurationError(
            f"{name} must be {what} integer{' or None' if optional else ''}, not {value!r}"
        )


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How the executor retries *retry-here* errors (429, 5xx, 529, timeouts, resets).

    Args:
        max_retries: retries per deployment after its first try (so at most
            ``1 + max_retries`` requests to one deployment per call).
        backoff_initial_s: first backoff step; the n-th retry waits about
            ``backoff_initial_s * 2**(n-1)`` plus up to ``backoff_jitter_s`` of jitter,
            never more than ``backoff_max_s`` (tenacity's ``wait_exponential_jitter``).
        backoff_max_s: the largest backoff.
        backoff_jitter_s: the random part added to each backoff.
        retry_after_cap_s: the longest Retry-After the executor waits for. A longer
            one makes it fail over at once, without waiting (the deployment's quota
            scope still stays closed for the time the provider asked).
        prefer_failover: on a retry-here error, go to the next healthy candidate at
            once and come back to the failed one (after its backoff) only when the
            rest of the plan is exhausted. ``False`` retries the same deployment first
            (classic retry-then-fail-over).
        wait: a custom tenacity wait strategy (anything called with a retry state
            whose ``attempt_number`` is the 1-based retry number) instead of the
            exponential-with-jitter default.
    """

    max_retries: int = 2
    backoff_initial_s: float = 0.25
    backoff_max_s: float = 8.0
    backoff_jitter_s: float = 0.25
    retry_after_cap_s: float = 10.0
    prefer_failover: bool = True
    wait: wait_base | None = field(default=None, compare=False)
    _strategy: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _whole("max_retries", self.max_retries, minimum=0)
        _non_negative("backoff_initial_s", self.backoff_initial_s)
        _non_negative("backoff_max_s", self.backoff_max_s)
        _non_negative("backoff_jitter_s", self.backoff_jitter_s)
        _non_negative("retry_after_cap_s", self.retry_after_cap_s)
        strategy = self.wait
        if strategy is None:
            # Built once per settings object: the success path never touches tenacity.
            strategy = wait_exponential_jitter(
                multiplier=self.backoff_initial_s,
                max=self.backoff_max_s,
                jitter=self.backoff_jitter_s,
            )
        object.__setattr__(self, "_strategy", strategy)

    def backoff(self, retry_number: int) -> float:
        """Seconds to wait before the ``retry_number``-th retry (1-based) of one deployment."""
        return max(0.0, float(self._strategy(_RetryState(max(1, retry_number)))))


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Circuit breakers, one per deployment and one per quota scope.

    A breaker judges a deployment by its recent outcomes, not by a lucky or unlucky
    streak in the order answers happen to arrive. It opens on either rule:

    * **failure rate** — the window (the last ``window_size`` outcomes, none older
      than ``window_s``) holds at least ``minimum_requests`` outcomes and at least
      ``failure_rate_threshold`` of them are failures;
    * **failure run** — the last requests *in the order they were sent* all failed:
      ``failure_threshold`` of them when nothing succeeded within ``window_s`` (an
      endpoint that is down from the start, or has been silent: found in a handful of
      requests), else ``minimum_requests`` of them (one that was answering and died).
      Sent order matters: an instant 5xx does not overtake a slower success sent
      before it, so a deployment failing 30% of the time is not benched by chance.

    Args:
        failure_threshold: the short failure run that opens a breaker which has had no
            success within ``window_s``; for a quota scope, throttles (429s).
        minimum_requests: outcomes the window must hold before the rate may open the
            breaker; also the failure run that opens one that was answering lately.
        failure_rate_threshold: the failure share (0 < x <= 1) of the window that opens it.
        window_s: how far back the window looks, in seconds.
        window_size: how many outcomes the window keeps at most.
        cooldown_s: how long a breaker stays open before letting a probe through.
        cooldown_multiplier: a failed probe re-opens the breaker with the cool-down
            multiplied by this ...
        max_cooldown_s: ... up to this.
        failover_cooldown_s: cool-down after a *fail-over* error (bad key, quota or
            balance exhausted, retired model, region blocked): these do not heal in
            seconds, so the breaker opens at once and for longer, and no early probe is
            sent (see ``probe_interval_s``).
        half_open_max_probes: concurrent probe requests a half-open breaker lets through.
        probe_interval_s: open breakers are a last resort. A call whose every remaining
            candidate is behind an open breaker waits for one of them, and the first
            such call becomes a probe before the cool-down ends — at most one probe per
            breaker per ``probe_interval_s``. A probe that succeeds closes the breaker
            for everyone.
        last_resort_wait_s: how long such a call waits at most (never past its
            deadline) before it fails with the deployments it could not reach.
            0: never wait (skip open breakers at once).
        throttle_hold_s: a throttle (429, or a throttling code such as DashScope's
            ``Throttling.AllocationQuota``) without a Retry-After holds its quota scope
            this long, so the key gets a breath instead of the next call at once. 0: no hold.
        probe_timeout_s: a probe that never reports back (its task was lost) frees its
            probe slot after this long.
        warmup_max_in_flight: a deployment that has not answered yet (never succeeded)
            takes at most this many concurrent requests; the rest of a burst fails over
            at once instead of piling onto an endpoint that may be dead. None: no cap.
    """

    failure_threshold: int = 5
    minimum_requests: int = 20
    failure_rate_threshold: float = 0.6
    window_s: float = 30.0
    window_size: int = 100
    cooldown_s: float = 30.0
    cooldown_multiplier: float = 2.0
    max_cooldown_s: float = 300.0
    failover_cooldown_s: float = 300.0
    half_open_max_probes: int = 1
    probe_interval_s: float = 1.0
    last_resort_wait_s: float = 10.0
    throttle_hold_s: float = 0.5
    probe_timeout_s: float = 120.0
    warmup_max_in_flight: int | None = 4

    def __post_init__(self) -> None:
        _whole("warmup_max_in_flight", self.warmup_max_in_flight, minimum=1, optional=True)
        for name in (
            "failure_threshold",
            "minimum_requests",
            "window_size",
            "half_open_max_probes",
        ):
            _whole(name, getattr(self, name), minimum=1)
        rate = self.failure_rate_threshold
        if not _number(rate) or not 0 < rate <= 1:
            raise ConfigurationError(
                f"failure_rate_threshold must be a share in (0, 1], not {rate!r}"
            )
        _positive("window_s", self.window_s)
        _non_negative("cooldown_s", self.cooldown_s)
        _non_negative("max_cooldown_s", self.max_cooldown_s)
        _non_negative("failover_cooldown_s", self.failover_cooldown_s)
        _non_negative("probe_interval_s", self.probe_interval_s)
        _non_negative("last_resort_wait_s", self.last_resort_wait_s)
        _non_negative("throttle_hold_s", self.throttle_hold_s)
        _positive("probe_timeout_s", self.probe_timeout_s)
        if not _number(self.cooldown_multiplier) or self.cooldown_multiplier < 1:
            raise ConfigurationError(
                "cooldown_multiplier must be a finite number >= 1, "
                f"not {self.cooldown_multiplier!r}"
            )


@dataclass(frozen=True, slots=True)
class Budget:
    """One call's limits: wall-clock deadline, network attempts, and spend.

    Args:
        deadline_s: seconds from the start of the call; each attempt runs under the
            remaining time and no backoff sleeps past it. ``None``: no deadline.
        max_attempts: network attempts across all deployments (hedges included;
            deployments skipped without a request do not count). The default, 9, is
            three deployments' worth of ``1 + max_retries`` tries with the default
            ``RetrySettings``: three deployments each failing 30% of requests then fail
            ~2e-5 of calls (0.3**9), where 6 attempts failed ~7e-4. ``None``: no limit.
        max_cost_usd: the priced cost of the call's attempts so far; an attempt whose
            expected cost (the plan's estimate) would take the spend past this is not
            started. ``None``: no limit.
    """

    deadline_s: float | None = 60.0
    max_attempts: int | None = 9
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        _positive("deadline_s", self.deadline_s, optional=True)
        _whole("max_attempts", self.max_attempts, minimum=1, optional=True)
        _non_negative("max_cost_usd", self.max_cost_usd, optional=True)


@dataclass(frozen=True, slots=True)
class HedgeSettings:
    """Hedged requests (opt-in): race a second deployment in another region when slow.

    Args:
        enabled: off by default (a hedge can double the spend of a slow call).
        delay_s: start a hedge when the first attempt has not answered after this many
            seconds. ``None``: use the deployment's measured p95 latency (never less than
            ``min_delay_s``), or ``fallback_delay_s`` before anything was measured.
        max_hedges: extra attempts per call racing the first one.
        min_delay_s: floor of the measured-p95 delay.
        fallback_delay_s: delay while a deployment has no latency measurements yet.
    """

    enabled: bool = False
    delay_s: float | None = None
    max_hedges: int = 1
    min_delay_s: float = 0.05
    fallback_delay_s: float = 2.0

    def __post_init__(self) -> None:
        _non_negative("delay_s", self.delay_s)
        _non_negative("min_delay_s", self.min_delay_s)
        _non_negative("fallback_delay_s", self.fallback_delay_s)
        _whole("max_hedges", self.max_hedges, minimum=0)

"""Circuit breakers: one per deployment and one per quota scope.

A breaker is *closed* (requests flow), *open* (requests are skipped without a network
call) or *half-open* (one probe request at a time decides). Transitions::

    closed --(failure_threshold consecutive failures)--> open
    open   --(cool-down elapsed)------------------------> half_open
    half_open --(probe succeeds)------------------------> closed   (cool-down reset)
    half_open --(probe fails)---------------------------> open     (cool-down x multiplier, capped)
    any    --(fail-over error: key, quota, retired)-----> open     (failover_cooldown_s)

Besides its state a breaker can be *held* until a time the provider named: a 429 with
Retry-After holds the deployment's **quota scope** (every deployment sharing the key or
upstream limit) until the Retry-After elapses, so one throttle does not spray retries
at the twins. A hold ends by itself (no probe needed: the provider said when), and
while it lasts :meth:`BreakerRegistry.health` reports ``"open"``.

What counts, per taxonomy kind (see :meth:`BreakerRegistry.record_failure`):

* ``retry_here`` — a health failure of the deployment. A throttle (HTTP 429 or a
  rate-limit code) also counts on the quota scope, and its Retry-After holds the scope;
  another retry-here error with a Retry-After (503) holds only the deployment.
* ``fail_over`` — opens the deployment at once for ``failover_cooldown_s``; the quota
  scope too when the error is about the shared key or account (401, 402, quota,
  balance, arrears).
* ``content_refused``, ``context_too_long``, ``fatal`` — the endpoint answered: these
  count as a success for the breakers (they are about the request, not its health).
* a cancelled attempt (hedge loser, deadline, caller cancelled) only frees the probe.

Time comes from an injectable monotonic ``clock`` so tests can drive it. The breakers
are meant for one event loop (or one thread) at a time, like the clients they guard.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.resilience.settings import BreakerSettings

__all__ = [
    "BreakerBlock",
    "BreakerInfo",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "is_scope_wide",
    "is_throttle",
]

BreakerState = Literal["closed", "open", "half_open"]

CLOSED: BreakerState = "closed"
OPEN: BreakerState = "open"
HALF_OPEN: BreakerState = "half_open"

Clock = Callable[[], float]

_THROTTLE_CODES = ("rate_limit", "ratelimit", "throttl", "burstrate", "ratequota", "too_many")
_SCOPE_WIDE_CODES = (
    "quota",
    "arrear",
    "billoverdue",
    "balance",
    "invalid_api_key",
    "invalidapikey",
    "authentication",
    "unauthorized",
    "payment",
    "spend_limit",
    "spendlimit",
    "commoditynotpurchased",
    "freetieronly",
)


def is_throttle(error: ProviderError) -> bool:
    """A retry-here error that means *the key or account is sending too fast* (a 429)."""
    if error.status == 429:
        return True
    code = (error.code or "").lower()
    return bool(code) and any(part in code for part in _THROTTLE_CODES)


def is_scope_wide(error: ProviderError) -> bool:
    """A fail-over error about the shared key or account rather than one deployment."""
    if error.status in (401, 402, 429):
        return True
    code = (error.code or "").lower().replace(".", "")
    return bool(code) and any(part in code for part in _SCOPE_WIDE_CODES)


#: How soon a request refused by the warm-up cap may be tried again on that deployment.
_WARMUP_RETRY_S = 0.05


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


class CircuitBreaker:
    """One breaker. Use it through :class:`BreakerRegistry` unless you need a bare one."""

    __slots__ = (
        "_clock",
        "_cooldown",
        "_failures",
        "_hold_until",
        "_in_flight",
        "_open_until",
        "_probe_since",
        "_state",
        "failures_total",
        "kind",
        "last_error",
        "name",
        "settings",
        "successes_total",
        "times_opened",
    )

    def __init__(
        self,
        name: str,
        settings: BreakerSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        kind: Literal["deployment", "quota_scope"] = "deployment",
    ) -> None:
        self.name = name
        self.kind = kind
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._state: BreakerState = CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._hold_until = 0.0
        self._cooldown = self.settings.cooldown_s
        self._probe_since: float | None = None
        self.times_opened = 0
        self.failures_total = 0
        self.successes_total = 0
        # Requests granted and not yet reported back (for the warm-up cap).
        self._in_flight = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.health()!r})"

    # --- reading -------------------------------------------------------------------

    def _refresh(self, now: float) -> BreakerState:
        if self._state is OPEN and now >= self._open_until:
            self._state = HALF_OPEN
            self._probe_since = None
        return self._state

    @property
    def state(self) -> BreakerState:
        """The state machine's state (a Retry-After hold is not included: see :meth:`health`)."""
        return self._refresh(self._clock())

    def health(self) -> BreakerState:
        """``"open"`` while held by a Retry-After, else the state."""
        now = self._clock()
        if now < self._hold_until:
            return OPEN
        return self._refresh(now)

    def retry_in(self) -> float | None:
        """Seconds until a request may pass (0 now; None while a probe is in flight)."""
        now = self._clock()
        wait = max(0.0, self._hold_until - now)
        state = self._refresh(now)
        if state is OPEN:
            return max(wait, self._open_until - now)
        if state is HALF_OPEN and self._probe_busy(now):
            return None
        return wait

    def _probe_busy(self, now: float) -> bool:
        since = self._probe_since
        return since is not None and now - since < self.settings.probe_timeout_s

    def info(self, *, scope: str | None = None, members: Iterable[str] = ()) -> BreakerInfo:
        now = self._clock()
        held = max(0.0, self._hold_until - now)
        state = self._refresh(now)
        return BreakerInfo(
            name=self.name,
            kind=self.kind,
            state=OPEN if held > 0 else state,
            breaker_state=state,
            consecutive_failures=self._failures,
            cooldown_s=self._cooldown,
            retry_in_s=self.retry_in(),
            held_for_s=held,
            times_opened=self.times_opened,
            failures=self.failures_total,
            successes=self.successes_total,
            last_error=self.last_error,
            scope=scope,
            members=tuple(members),
        )

    # --- gate ----------------------------------------------------------------------

    def try_acquire(self) -> BreakerBlock | BreakerState:
        """Ask to send one request: the state it goes out under, or why not.

        In half-open state the first caller becomes the probe; it must report back
        with :meth:`on_success`, :meth:`on_failure`, :meth:`trip` or :meth:`release`.
        """
        now = self._clock()
        if now < self._hold_until:
            return BreakerBlock(
                self.name, "hold", self._hold_until - now, self.kind == "quota_scope"
            )
        state = self._state
        if state is CLOSED:
            cap = self.settings.warmup_max_in_flight
            if (
                cap is not None
                and self.successes_total == 0
                and self.kind == "deployment"
                and self._in_flight >= cap
            ):
                # Unproven endpoint: let a few requests find out whether it is alive;
                # the rest of a burst goes elsewhere now (the executor defers this one).
                return BreakerBlock(self.name, "warmup", _WARMUP_RETRY_S, False)
            self._in_flight += 1
            return CLOSED
        state = self._refresh(now)
        if state is OPEN:
            return BreakerBlock(
                self.name, "open", self._open_until - now, self.kind == "quota_scope"
            )
        if self._probe_busy(now):
            return BreakerBlock(self.name, "half_open", None, self.kind == "quota_scope")
        self._probe_since = now
        self._in_flight += 1
        return HALF_OPEN

    # --- outcomes ------------------------------------------------------------------

    def on_success(self) -> None:
        """The endpoint answered: reset the failure streak; a half-open probe closes it."""
        self._done()
        self.successes_total += 1
        self._failures = 0
        if self._state is not CLOSED and self._refresh(self._clock()) is HALF_OPEN:
            self._state = CLOSED
            self._probe_since = None
            self._cooldown = self.settings.cooldown_s

    def on_failure(self, description: str | None = None) -> bool:
        """A health failure. Returns True when this failure opened the breaker."""
        self._done()
        self.failures_total += 1
        self._failures += 1
        if description is not None:
            self.last_error = description
        now = self._clock()
        state = self._refresh(now)
        if state is HALF_OPEN:
            # A failed probe: open again with a longer cool-down (never shorter than before).
            grown = min(
                self._cooldown * self.settings.cooldown_multiplier, self.settings.max_cooldown_s
            )
            self._open(now, max(self._cooldown, grown))
            return True
        if state is CLOSED and self._failures >= self.settings.failure_threshold:
            self._open(now, self.settings.cooldown_s)
            return True
        return False

    def trip(self, cooldown_s: float, description: str | None = None) -> bool:
        """Open now for at least ``cooldown_s`` (fail-over errors). True if it was not open."""
        self._done()
        self.failures_total += 1
        self._failures += 1
        if description is not None:
            self.last_error = description
        now = self._clock()
        state = self._refresh(now)
        if state is HALF_OPEN:
            # A failed probe: back off harder than before, and at least the trip's time.
            cooldown_s = max(
                cooldown_s,
                min(
                    self._cooldown * self.settings.cooldown_multiplier, self.settings.max_cooldown_s
                ),
            )
        if state is OPEN:
            self._open_until = max(self._open_until, now + cooldown_s)
            self._cooldown = max(self._cooldown, cooldown_s)
            return False
        self._open(now, cooldown_s)
        return True

    def hold(self, seconds: float, description: str | None = None) -> None:
        """Refuse requests for ``seconds`` (Retry-After); the state machine is untouched."""
        if description is not None:
            self.last_error = description
        self._hold_until = max(self._hold_until, self._clock() + max(0.0, seconds))

    def release(self) -> None:
        """An attempt ended without a verdict (cancelled): free the half-open probe slot."""
        self._done()
        self._probe_since = None

    def _done(self) -> None:
        if self._in_flight > 0:
            self._in_flight -= 1

    def reset(self) -> None:
        """Back to closed, no holds, counters kept."""
        self._state = CLOSED
        self._failures = 0
        self._open_until = 0.0
        self._hold_until = 0.0
        self._probe_since = None
        self._cooldown = self.settings.cooldown_s

    def _open(self, now: float, cooldown_s: float) -> None:
        self._state = OPEN
        self._cooldown = cooldown_s
        self._open_until = now + cooldown_s
        self._probe_since = None
        self.times_opened += 1


class BreakerRegistry:
    """Every deployment's and quota scope's breaker, created on first use.

    ``health`` is the router's view (``"closed"|"open"|"half_open"``), ``state`` and
    ``snapshot`` are for alerting, and the executor goes through ``acquire`` and the
    ``record_*`` methods.
    """

    def __init__(
        self, settings: BreakerSettings | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._deployments: dict[str, CircuitBreaker] = {}
        self._scopes: dict[str, CircuitBreaker] = {}
        #: deployment id -> (its breaker, its scope's breaker)
        self._pairs: dict[str, tuple[CircuitBreaker, CircuitBreaker]] = {}
        self._scope_of: dict[str, str] = {}

    def __repr__(self) -> str:
        opened = [name for name, info in self.snapshot().items() if info.state != CLOSED]
        count = len(self._deployments) + len(self._scopes)
        return f"BreakerRegistry(breakers={count}, not_closed={opened})"

    # --- lookup --------------------------------------------------------------------

    def _pair(self, deployment: Deployment) -> tuple[CircuitBreaker, CircuitBreaker]:
        key = deployment.id
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._make_pair(key, deployment.quota_scope or key)
        return pair

    def _make_pair(self, key: str, scope: str) -> tuple[CircuitBreaker, CircuitBreaker]:
        own = self._deployments.get(key)
        if own is None:
            own = self._deployments[key] = CircuitBreaker(key, self.settings, clock=self._clock)
        shared = self._scopes.get(scope)
        if shared is None:
            shared = self._scopes[scope] = CircuitBreaker(
                scope, self.settings, clock=self._clock, kind="quota_scope"
            )
        pair = self._pairs[key] = (own, shared)
        self._scope_of[key] = scope
        return pair

    def _lookup(self, deployment: Deployment | str) -> tuple[CircuitBreaker, CircuitBreaker] | None:
        # Read-only: asking about a deployment creates no breaker for it.
        if isinstance(deployment, str):
            return self._pairs.get(deployment)
        pair = self._pairs.get(deployment.id)
        if pair is None:
            # Never used itself, but its quota scope may be held by a twin.
            scope = self._scopes.get(deployment.quota_scope or deployment.id)
            if scope is not None:
                return self._pair(deployment)
        return pair

    def breaker(self, deployment: Deployment) -> CircuitBreaker:
        """The deployment's own breaker."""
        return self._pair(deployment)[0]

    def scope_breaker(self, deployment: Deployment) -> CircuitBreaker:
        """The breaker of the deployment's quota scope (shared with its twins)."""
        return self._pair(deployment)[1]

    # --- views ---------------------------------------------------------------------

    def health(self, deployment: Deployment | str) -> BreakerState:
        """What the router should know: open if the deployment or its scope refuses now.

        ``"half_open"`` means a probe may be sent (or is out); a deployment never seen
        (or an unknown id) is ``"closed"``.
        """
        pair = self._lookup(deployment)
        if pair is None:
            return CLOSED
        own, shared = pair
        scope_health = shared.health()
        if scope_health is OPEN:
            return OPEN
        own_health = own.health()
        if own_health is CLOSED and scope_health is HALF_OPEN:
            return HALF_OPEN
        return own_health

    def state(self, deployment: Deployment | str) -> BreakerInfo:
        """The deployment breaker's details, with its scope's combined into ``state``."""
        pair = self._lookup(deployment)
        if pair is None:
            name = deployment if isinstance(deployment, str) else deployment.id
            return CircuitBreaker(name, self.settings, clock=self._clock).info()
        own, shared = pair
        info = own.info(scope=shared.name)
        combined = self.health(own.name)
        if combined != info.state:
            retry_in = shared.retry_in()
            info = replace(
                info,
                state=combined,
                retry_in_s=None
                if retry_in is None or info.retry_in_s is None
                else max(retry_in, info.retry_in_s),
                held_for_s=max(info.held_for_s, shared.info().held_for_s),
            )
        return info

    def snapshot(self) -> dict[str, BreakerInfo]:
        """Every breaker: deployments by id, quota scopes as ``"scope:<name>"``."""
        members: dict[str, list[str]] = {}
        for dep, scope in self._scope_of.items():
            members.setdefault(scope, []).append(dep)
        out: dict[str, BreakerInfo] = {}
        for name, breaker in self._deployments.items():
            out[name] = breaker.info(scope=self._scope_of.get(name))
        for name, breaker in self._scopes.items():
            out[f"scope:{name}"] = breaker.info(members=members.get(name, ()))
        return out

    # --- the executor's side ---------------------------------------------------------

    def acquire(self, deployment: Deployment) -> BreakerBlock | BreakerState:
        """Ask to send a request: the deployment's state it goes out under, or a block.

        A granted half-open probe must be followed by ``record_success``,
        ``record_failure`` or ``release``.
        """
        own, shared = self._pair(deployment)
        # Fast path: both closed and not held.
        scope_gate = shared.try_acquire()
        if scope_gate.__class__ is BreakerBlock:
            return scope_gate  # type: ignore[return-value]
        own_gate = own.try_acquire()
        if own_gate.__class__ is BreakerBlock:
            if scope_gate is HALF_OPEN:
                shared.release()
            return own_gate  # type: ignore[return-value]
        if scope_gate is HALF_OPEN:
            return HALF_OPEN
        return own_gate  # type: ignore[return-value]

    def record_success(self, deployment: Deployment) -> None:
        own, shared = self._pair(deployment)
        own.on_success()
        shared.on_success()

    def release(self, deployment: Deployment) -> None:
        own, shared = self._pair(deployment)
        own.release()
        shared.release()

    def record_failure(self, deployment: Deployment, error: ProviderError) -> list[str]:
        """Apply one failed attempt; returns the names of the breakers it opened or held."""
        own, shared = self._pair(deployment)
        kind = error.kind
        description = f"{kind}: {error.message}"
        opened: list[str] = []
        if kind == "retry_here":
            if own.on_failure(description):
                opened.append(own.name)
            retry_after = error.retry_after
            if is_throttle(error):
                if retry_after is not None and retry_after > 0:
                    shared.hold(retry_after, description)
                    opened.append(f"scope:{shared.name}")
                if shared.on_failure(description):
                    opened.append(f"scope:{shared.name}")
            else:
                shared.release()
                if retry_after is not None and retry_after > 0:
                    own.hold(retry_after, description)
        elif kind == "fail_over":
            cooldown = self.settings.failover_cooldown_s
            if own.trip(cooldown, description):
                opened.append(own.name)
            if is_scope_wide(error):
                if shared.trip(cooldown, description):
                    opened.append(f"scope:{shared.name}")
            else:
                shared.release()
        else:
            # Refused, too long, fatal: the endpoint is alive and answering.
            own.on_success()
            shared.on_success()
        return list(dict.fromkeys(opened))

    def reset(self, deployment: Deployment | str | None = None) -> None:
        """Close one deployment's breaker and its scope's, or every breaker."""
        if deployment is None:
            for breaker in (*self._deployments.values(), *self._scopes.values()):
                breaker.reset()
            return
        pair = self._lookup(deployment)
        if pair is not None:
            pair[0].reset()
            pair[1].reset()

"""Circuit breakers: one per deployment and one per quota scope.

A breaker is *closed* (requests flow), *open* (requests are skipped without a network
call) or *half-open* (a probe request decides). Transitions::

    closed --(failure rate or failure run, see below)---> open
    open   --(cool-down elapsed)------------------------> half_open
    half_open --(probe succeeds)------------------------> closed  (cool-down reset)
    half_open --(probe fails)---------------------------> open    (cool-down x multiplier, capped)
    any    --(fail-over error: key, quota, retired)-----> open    (failover_cooldown_s)

A closed breaker opens on either rule (:class:`BreakerSettings` has the numbers):

* **failure rate** over a window of recent outcomes (count- and time-bounded) with a
  minimum number of outcomes before it may open;
* **failure run**: the last requests, *in the order they were sent*, all failed — a
  short run (``failure_threshold``) when nothing succeeded within the window, so an
  endpoint that is down is found in a handful of requests; a long one
  (``minimum_requests``) when it was answering lately.

Outcomes are matched to the request that produced them by a :class:`BreakerTicket`
(its send sequence number), so an instant 5xx does not overtake a slower success sent
before it, and an answer to a request sent before the breaker last changed state
(*stale*) counts in the totals but never moves the state machine.

Open breakers are a last resort. A call with nothing else left may wait for one, and
the first such call becomes a probe early (``last_resort=True`` in :meth:`admit`): at
most one per ``probe_interval_s`` (and ``half_open_max_probes`` at a time). A breaker
opened by a fail-over error takes no early probe: a revoked key does not heal in a
second.

Besides its state a breaker can be *held* until a time the provider named: a 429 with
Retry-After holds the deployment's **quota scope** (every deployment sharing the key or
upstream limit) until the Retry-After elapses, so one throttle does not spray retries
at the twins; a throttle without one holds it for ``throttle_hold_s``. A hold ends by
itself (no probe needed: the provider said when), and while it lasts
:meth:`BreakerRegistry.health` reports ``"open"``.

What counts, per taxonomy kind (see :meth:`BreakerRegistry.record_failure`):

* ``retry_here`` — a health failure of the deployment. A throttle (HTTP 429 or a
  rate-limit code) also counts on the quota scope, and holds the scope (its
  Retry-After, else ``throttle_hold_s``); another retry-here error with a Retry-After
  (503) holds only the deployment.
* ``fail_over`` — opens the deployment at once for ``failover_cooldown_s``; the quota
  scope too when the error is about the shared key or account (401, 402, quota,
  balance, arrears).
* ``content_refused``, ``context_too_long``, ``fatal`` — the endpoint answered: these
  count as a success for the breakers (they are about the request, not its health).
* a cancelled attempt (hedge loser, deadline, caller cancelled) only frees its place.

Time comes from an injectable monotonic ``clock`` so tests can drive it. The breakers
are meant for one event loop (or one thread) at a time, like the clients they guard.

With a shared :class:`~hybridstack.resilience.health.HealthStore` (``store=``) a breaker
also tells the store each outcome it judged, each open, close and hold, and before it
answers anything it adopts the fleet's view (open until, held until, closed by another
process's probe) from the store's local cache; a probe is sent only by the process
that claimed it in the store. Without one (or while the store is degraded) nothing
changes: each breaker decides from what its own process saw.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.resilience.health import HealthStore, SharedBreaker, breaker_key
from hybridstack.resilience.settings import BreakerSettings

__all__ = [
    "BreakerAdmission",
    "BreakerBlock",
    "BreakerInfo",
    "BreakerRegistry",
    "BreakerState",
    "BreakerTicket",
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
#: How often a call waiting on a breaker whose probe is out asks again for its verdict.
_PROBE_POLL_S = 0.05
#: A shared open-until later than the local one by less than this is the same opening
#: (the store's round trip), not a re-opening.
_SKEW_S = 0.25


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


class CircuitBreaker:
    """One breaker. Use it through :class:`BreakerRegistry` unless you need a bare one."""

    __slots__ = (
        "_clock",
        "_cooldown",
        "_epoch",
        "_failover",
        "_hold_until",
        "_in_flight",
        "_key",
        "_last_probe_at",
        "_last_success_at",
        "_newest_success",
        "_open_until",
        "_outcomes",
        "_probe_since",
        "_probes",
        "_run",
        "_sent",
        "_state",
        "_store",
        "_synced",
        "_window_failures",
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
        store: HealthStore | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self._store = store if store is not None and store.shared else None
        self._key = breaker_key(kind, name)
        self._synced: SharedBreaker | None = None
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self._state: BreakerState = CLOSED
        self._open_until = 0.0
        self._hold_until = 0.0
        self._cooldown = self.settings.cooldown_s
        self._failover = False
        # Send order: every granted request takes the next number; a state change
        # starts a new epoch, and outcomes of requests sent before it are stale.
        self._sent = 0
        self._epoch = 0
        # The window: (completed at, failed) per outcome, oldest first.
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        # The failure run: send numbers of the failures sent after the newest success.
        self._run: list[int] = []
        self._newest_success = -1
        self._last_success_at: float | None = None
        self._probes = 0
        self._probe_since = 0.0
        self._last_probe_at = 0.0
        self.times_opened = 0
        self.failures_total = 0
        self.successes_total = 0
        # Requests granted and not yet reported back (for the warm-up cap).
        self._in_flight = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.health()!r})"

    # --- the shared view -------------------------------------------------------------

    def _now(self) -> float:
        """The clock, after adopting the fleet's view if the store has a newer one."""
        now = self._clock()
        if self._store is not None:
            view = self._store.breaker_view(self._key)
            if view is not None and view is not self._synced:
                self._adopt(view, now)
        return now

    def _adopt(self, view: SharedBreaker, now: float) -> None:
        self._synced = view
        if view.held_for_s > 0:
            self._hold_until = max(self._hold_until, now + view.remaining(view.held_for_s))
        if view.open:
            until = now + view.remaining(view.open_for_s)
            if self._state is CLOSED:
                # Another process (or the shared window) opened it: a new epoch here too.
                self._state = OPEN
                self._open_until = until
                self._cooldown = view.cooldown_s or self.settings.cooldown_s
                self._failover = view.failover
                self._epoch = self._sent
                self._probes = 0
                self._last_probe_at = now
                self.times_opened += 1
            elif until > self._open_until + _SKEW_S:
                reopened = self._refresh(now) is HALF_OPEN  # another process's probe failed
                self._state = OPEN
                self._open_until = until
                self._cooldown = max(self._cooldown, view.cooldown_s)
                self._failover = self._failover or view.failover
                if reopened:
                    self._epoch = self._sent
                    self._probes = 0
                    self._last_probe_at = now
        elif self._state is not CLOSED:
            self._close(push=False)  # another process's probe succeeded

    # --- reading -------------------------------------------------------------------

    def _refresh(self, now: float) -> BreakerState:
        if self._state is OPEN and now >= self._open_until:
            self._state = HALF_OPEN
        return self._state

    @property
    def state(self) -> BreakerState:
        """The state machine's state (a Retry-After hold is not included: see :meth:`health`)."""
        return self._refresh(self._now())

    def health(self) -> BreakerState:
        """``"open"`` while held by a Retry-After, else the state."""
        now = self._now()
        if now < self._hold_until:
            return OPEN
        return self._refresh(now)

    def retry_in(self) -> float | None:
        """Seconds until a request may pass (0 now; None while a probe is in flight)."""
        now = self._now()
        wait = max(0.0, self._hold_until - now)
        state = self._refresh(now)
        if state is OPEN:
            return max(wait, self._open_until - now)
        if state is HALF_OPEN and self._probes_busy(now):
            return None
        return wait

    def _probes_busy(self, now: float) -> bool:
        if self._probes and now - self._probe_since >= self.settings.probe_timeout_s:
            self._probes = 0  # their tasks were lost: free the slots
        return self._probes >= self.settings.half_open_max_probes

    def _trim(self, now: float) -> None:
        outcomes = self._outcomes
        horizon = now - self.settings.window_s
        size = self.settings.window_size
        while outcomes and (len(outcomes) > size or outcomes[0][0] < horizon):
            if outcomes.popleft()[1]:
                self._window_failures -= 1

    def info(self, *, scope: str | None = None, members: Iterable[str] = ()) -> BreakerInfo:
        now = self._now()
        held = max(0.0, self._hold_until - now)
        state = self._refresh(now)
        self._trim(now)
        window = len(self._outcomes)
        return BreakerInfo(
            name=self.name,
            kind=self.kind,
            state=OPEN if held > 0 else state,
            breaker_state=state,
            consecutive_failures=len(self._run),
            cooldown_s=self._cooldown,
            retry_in_s=self.retry_in(),
            held_for_s=held,
            times_opened=self.times_opened,
            failures=self.failures_total,
            successes=self.successes_total,
            last_error=self.last_error,
            scope=scope,
            members=tuple(members),
            window_requests=window,
            window_failures=self._window_failures,
            failure_rate=self._window_failures / window if window else None,
            probes_in_flight=self._probes,
            failover=self._failover and state is not CLOSED,
        )

    # --- gate ----------------------------------------------------------------------

    def admit(self, *, last_resort: bool = False) -> BreakerBlock | BreakerTicket:
        """Ask to send one request: a ticket to hand back with its outcome, or why not.

        In half-open state the first callers (``half_open_max_probes``) become probes.
        ``last_resort=True`` (the caller has no other candidate) also lets an open
        breaker take an early probe, at most one per ``probe_interval_s``, unless it was
        opened by a fail-over error. Every ticket must be handed back to
        :meth:`on_success`, :meth:`on_failure`, :meth:`trip` or :meth:`release`.

        With a shared store, a probe also needs this process to own the breaker's probe
        claim; until the store says so the request is refused like one behind a probe.
        """
        now = self._now()
        if now < self._hold_until:
            return BreakerBlock(
                self.name, "hold", self._hold_until - now, self.kind == "quota_scope"
            )
        if self._state is CLOSED:
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
            return self._grant(CLOSED, probe=False, now=now)
        state = self._refresh(now)
        scope = self.kind == "quota_scope"
        if self._probes_busy(now):
            retry_in = self._open_until - now if state is OPEN else None
            reason: Literal["open", "half_open"] = "open" if state is OPEN else "half_open"
            return BreakerBlock(self.name, reason, retry_in, scope, _PROBE_POLL_S)
        if state is OPEN:
            until_open = self._open_until - now
            if self._failover:
                return BreakerBlock(self.name, "open", until_open, scope, until_open)
            early = self._last_probe_at + self.settings.probe_interval_s - now
            if not last_resort or early > 0:
                return BreakerBlock(
                    self.name, "open", until_open, scope, max(0.0, min(early, until_open))
                )
        store = self._store
        if store is not None:
            if store.claim_probe(self._key, self.settings.probe_timeout_s) is not True:
                # Another process probes (or the store has not answered yet): wait for it.
                if state is OPEN:
                    return BreakerBlock(
                        self.name, "open", self._open_until - now, scope, _PROBE_POLL_S
                    )
                return BreakerBlock(self.name, "half_open", None, scope, _PROBE_POLL_S)
            store.probe_started(self._key, self.settings.probe_timeout_s)
        return self._grant(HALF_OPEN, probe=True, now=now)

    def _grant(self, state: BreakerState, *, probe: bool, now: float) -> BreakerTicket:
        seq = self._sent
        self._sent = seq + 1
        self._in_flight += 1
        if probe:
            self._probes += 1
            self._probe_since = self._last_probe_at = now
        return BreakerTicket(seq, state, probe)

    def try_acquire(self) -> BreakerBlock | BreakerState:
        """:meth:`admit` for ticketless callers: the state it goes out under, or why not."""
        gate = self.admit()
        return gate if isinstance(gate, BreakerBlock) else gate.state

    # --- outcomes ------------------------------------------------------------------

    def _settle(self, ticket: BreakerTicket | None) -> tuple[int, bool, bool]:
        """Account for a returned request: (its send number, was it a probe, is it stale)."""
        if self._in_flight > 0:
            self._in_flight -= 1
        if ticket is None:
            # No ticket: as if sent just now; the probe if the breaker is half-open.
            seq = self._sent
            self._sent = seq + 1
            probe = self._refresh(self._now()) is HALF_OPEN
            if probe and self._probes > 0:
                self._probes -= 1
                if self._store is not None:
                    self._store.release_probe(self._key)
            return seq, probe, False
        if ticket.probe and self._store is not None:
            self._store.release_probe(self._key)
        if ticket.seq < self._epoch:
            return ticket.seq, ticket.probe, True
        if ticket.probe and self._probes > 0:
            self._probes -= 1
        return ticket.seq, ticket.probe, False

    def on_success(self, ticket: BreakerTicket | None = None) -> None:
        """The endpoint answered: a probe closes the breaker; else it joins the window."""
        seq, probe, stale = self._settle(ticket)
        self.successes_total += 1
        if stale:
            return
        now = self._now()
        if self._state is not CLOSED:
            if probe and self._refresh(now) is not CLOSED:
                self._close(now)
            return
        self._last_success_at = now
        self._observe(now, failed=False)
        if seq > self._newest_success:
            self._newest_success = seq
            run = self._run
            if run:
                self._run = [s for s in run if s > seq]

    def on_failure(
        self, description: str | None = None, ticket: BreakerTicket | None = None
    ) -> bool:
        """A health failure. Returns True when this failure opened the breaker."""
        seq, probe, stale = self._settle(ticket)
        self.failures_total += 1
        if description is not None:
            self.last_error = description
        if stale:
            return False
        now = self._now()
        state = self._refresh(now)
        if state is not CLOSED:
            if probe and state is HALF_OPEN:
                # A failed probe: open again with a longer cool-down (never shorter).
                self._open(now, max(self._cooldown, self._grown()))
                return True
            return False  # an early probe failed: the breaker stays open as it was
        self._observe(now, failed=True)
        if seq > self._newest_success:
            self._run.append(seq)
        if self._should_open(now):
            self._open(now, self.settings.cooldown_s)
            return True
        return False

    def _grown(self) -> float:
        settings = self.settings
        return min(self._cooldown * settings.cooldown_multiplier, settings.max_cooldown_s)

    def _observe(self, now: float, *, failed: bool) -> None:
        if self._store is not None:
            self._store.breaker_outcome(self._key, failed, self.settings)
        self._outcomes.append((now, failed))
        if failed:
            self._window_failures += 1
        self._trim(now)

    def _should_open(self, now: float) -> bool:
        settings = self.settings
        window = len(self._outcomes)
        if (
            window >= settings.minimum_requests
            and self._window_failures >= settings.failure_rate_threshold * window
        ):
            return True
        answered_lately = (
            self._last_success_at is not None and now - self._last_success_at <= settings.window_s
        )
        needed = settings.minimum_requests if answered_lately else settings.failure_threshold
        return len(self._run) >= needed

    def trip(
        self, cooldown_s: float, description: str | None = None, ticket: BreakerTicket | None = None
    ) -> bool:
        """Open now for at least ``cooldown_s`` (fail-over errors). True if it was not open.

        Applied even from a stale request: a revoked key or an empty balance is a fact
        about the deployment, whenever the request that found out was sent.
        """
        self._settle(ticket)
        self.failures_total += 1
        if description is not None:
            self.last_error = description
        now = self._now()
        state = self._refresh(now)
        if state is HALF_OPEN:
            # A failed probe: back off harder than before, and at least the trip's time.
            cooldown_s = max(cooldown_s, self._grown())
        if state is OPEN:
            self._open_until = max(self._open_until, now + cooldown_s)
            self._cooldown = max(self._cooldown, cooldown_s)
            self._failover = True
            if self._store is not None:
                self._store.breaker_opened(self._key, cooldown_s, True)
            return False
        self._open(now, cooldown_s, failover=True)
        return True

    def hold(self, seconds: float, description: str | None = None) -> None:
        """Refuse requests for ``seconds`` (Retry-After); the state machine is untouched."""
        if description is not None:
            self.last_error = description
        self._hold_until = max(self._hold_until, self._clock() + max(0.0, seconds))
        if self._store is not None and seconds > 0:
            self._store.hold(self._key, seconds)

    def release(self, ticket: BreakerTicket | None = None) -> None:
        """An attempt ended without a verdict (cancelled): free its place (and probe slot)."""
        self._settle(ticket)

    def reset(self) -> None:
        """Back to closed, no holds, counters kept (with a shared store: for the fleet)."""
        self._close(force=True)
        self._hold_until = 0.0

    def _clear(self) -> None:
        self._epoch = self._sent
        self._outcomes.clear()
        self._window_failures = 0
        self._run = []
        self._probes = 0

    def _close(
        self, probe_succeeded_at: float | None = None, *, push: bool = True, force: bool = False
    ) -> None:
        if push and self._store is not None and self._state is not CLOSED:
            self._store.breaker_closed(self._key, force)
        self._state = CLOSED
        self._open_until = 0.0
        self._failover = False
        self._cooldown = self.settings.cooldown_s
        self._clear()
        if probe_succeeded_at is not None:
            # The probe's success is the first outcome of the new epoch.
            self._last_success_at = probe_succeeded_at

    def _open(self, now: float, cooldown_s: float, *, failover: bool = False) -> None:
        self._state = OPEN
        self._cooldown = cooldown_s
        self._open_until = now + cooldown_s
        self._failover = failover
        self._last_probe_at = now
        if self._store is not None:
            self._store.breaker_opened(self._key, cooldown_s, failover)
        # A new epoch; the window and run stay as they were (what opened it) until it closes.
        self._epoch = self._sent
        self._probes = 0
        self.times_opened += 1


class BreakerRegistry:
    """Every deployment's and quota scope's breaker, created on first use.

    ``health`` is the router's view (``"closed"|"open"|"half_open"``), ``state`` and
    ``snapshot`` are for alerting, and the executor goes through ``admit`` and the
    ``record_*`` methods (handing back the admission, so outcomes are judged in the
    order their requests were sent).

    ``store``: a shared :class:`~hybridstack.resilience.health.HealthStore` (default: none,
    every breaker is this process's own).
    """

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        store: HealthStore | None = None,
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._clock = clock
        self.store = store if store is not None and store.shared else None
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
            own = self._deployments[key] = CircuitBreaker(
                key, self.settings, clock=self._clock, store=self.store
            )
        shared = self._scopes.get(scope)
        if shared is None:
            shared = self._scopes[scope] = CircuitBreaker(
                scope, self.settings, clock=self._clock, kind="quota_scope", store=self.store
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
            # Never used itself, but its quota scope may be held by a twin (here, or in
            # another process when the store is shared).
            scope = deployment.quota_scope or deployment.id
            if scope in self._scopes:
                return self._pair(deployment)
            store = self.store
            if store is not None and (
                store.breaker_view(breaker_key("deployment", deployment.id)) is not None
                or store.breaker_view(breaker_key("quota_scope", scope)) is not None
            ):
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

    def admit(
        self, deployment: Deployment, *, last_resort: bool = False
    ) -> BreakerBlock | BreakerAdmission:
        """Ask to send a request: an admission to hand back with the outcome, or a block.

        ``last_resort=True``: the caller has no other candidate left, so an open breaker
        may take it as an early probe (see :meth:`CircuitBreaker.admit`). The admission
        must be passed to ``record_success``, ``record_failure`` or ``release``.
        """
        own, shared = self._pair(deployment)
        scope_gate = shared.admit(last_resort=last_resort)
        if scope_gate.__class__ is BreakerBlock:
            return scope_gate
        own_gate = own.admit(last_resort=last_resort)
        if own_gate.__class__ is BreakerBlock:
            shared.release(scope_gate)  # type: ignore[arg-type]
            return own_gate
        probe = scope_gate.probe or own_gate.probe  # type: ignore[union-attr]
        return BreakerAdmission(HALF_OPEN if probe else CLOSED, own_gate, scope_gate)  # type: ignore[arg-type]

    def acquire(self, deployment: Deployment) -> BreakerBlock | BreakerState:
        """:meth:`admit` for callers that report outcomes without an admission."""
        gate = self.admit(deployment)
        return gate if isinstance(gate, BreakerBlock) else gate.state

    def record_success(
        self, deployment: Deployment, admission: BreakerAdmission | None = None
    ) -> None:
        own, shared = self._pair(deployment)
        own.on_success(admission.own if admission is not None else None)
        shared.on_success(admission.scope if admission is not None else None)

    def release(self, deployment: Deployment, admission: BreakerAdmission | None = None) -> None:
        own, shared = self._pair(deployment)
        own.release(admission.own if admission is not None else None)
        shared.release(admission.scope if admission is not None else None)

    def record_failure(
        self,
        deployment: Deployment,
        error: ProviderError,
        admission: BreakerAdmission | None = None,
    ) -> list[str]:
        """Apply one failed attempt; returns the names of the breakers it opened or held."""
        own, shared = self._pair(deployment)
        mine = admission.own if admission is not None else None
        theirs = admission.scope if admission is not None else None
        kind = error.kind
        description = f"{kind}: {error.message}"
        opened: list[str] = []
        if kind == "retry_here":
            if own.on_failure(description, mine):
                opened.append(own.name)
            retry_after = error.retry_after
            if is_throttle(error):
                # Slow down the whole key: for as long as the provider said, else briefly.
                hold = retry_after if retry_after is not None and retry_after > 0 else None
                hold = hold if hold is not None else self.settings.throttle_hold_s
                if hold > 0:
                    shared.hold(hold, description)
                    opened.append(f"scope:{shared.name}")
                if shared.on_failure(description, theirs):
                    opened.append(f"scope:{shared.name}")
            else:
                shared.release(theirs)
                if retry_after is not None and retry_after > 0:
                    own.hold(retry_after, description)
        elif kind == "fail_over":
            cooldown = self.settings.failover_cooldown_s
            if own.trip(cooldown, description, mine):
                opened.append(own.name)
            if is_scope_wide(error):
                if shared.trip(cooldown, description, theirs):
                    opened.append(f"scope:{shared.name}")
            else:
                shared.release(theirs)
        else:
            # Refused, too long, fatal: the endpoint is alive and answering.
            own.on_success(mine)
            shared.on_success(theirs)
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

"""One circuit breaker: the closed / open / half-open state machine, its probes and holds.

:class:`CircuitBreaker` admits requests (tickets in send order, half-open and early
probes, the warm-up cap, Retry-After holds), judges their outcomes through its
:class:`~hybridstack.resilience.breaker_window.OutcomeWindow`, and with a shared
:class:`~hybridstack.resilience.health.HealthStore` tells the store what it judged and
adopts the fleet's view. The policy as a whole is described in
:mod:`hybridstack.resilience.breaker`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Literal

from hybridstack.resilience.breaker_types import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerBlock,
    BreakerInfo,
    BreakerState,
    BreakerTicket,
    Clock,
)
from hybridstack.resilience.breaker_window import OutcomeWindow
from hybridstack.resilience.health import HealthStore, SharedBreaker, breaker_key
from hybridstack.resilience.settings import BreakerSettings

__all__ = ["CircuitBreaker"]

#: How soon a request refused by the warm-up cap may be tried again on that deployment.
_WARMUP_RETRY_S = 0.05
#: How often a call waiting on a breaker whose probe is out asks again for its verdict.
_PROBE_POLL_S = 0.05
#: A shared open-until later than the local one by less than this is the same opening
#: (the store's round trip), not a re-opening.
_SKEW_S = 0.25


class CircuitBreaker:
    """One breaker.

    Use it through :class:`~hybridstack.resilience.breaker_registry.BreakerRegistry`
    unless you need a bare one.
    """

    __slots__ = (
        "_clock",
        "_cooldown",
        "_epoch",
        "_failover",
        "_hold_until",
        "_in_flight",
        "_key",
        "_last_probe_at",
        "_open_until",
        "_probe_since",
        "_probes",
        "_sent",
        "_state",
        "_store",
        "_synced",
        "_window",
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
        # The rate window and the failure run.
        self._window = OutcomeWindow()
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

    def info(self, *, scope: str | None = None, members: Iterable[str] = ()) -> BreakerInfo:
        now = self._now()
        held = max(0.0, self._hold_until - now)
        state = self._refresh(now)
        counts = self._window
        counts.trim(now, self.settings)
        window = counts.requests
        return BreakerInfo(
            name=self.name,
            kind=self.kind,
            state=OPEN if held > 0 else state,
            breaker_state=state,
            consecutive_failures=counts.run,
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
            window_failures=counts.failures,
            failure_rate=counts.failures / window if window else None,
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
        self._observe(failed=False)
        self._window.success(seq, now, self.settings)

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
        self._observe(failed=True)
        self._window.failure(seq, now, self.settings)
        if self._window.should_open(now, self.settings):
            self._open(now, self.settings.cooldown_s)
            return True
        return False

    def _grown(self) -> float:
        settings = self.settings
        return min(self._cooldown * settings.cooldown_multiplier, settings.max_cooldown_s)

    def _observe(self, *, failed: bool) -> None:
        """Tell the shared store (if any) one outcome this closed breaker judged."""
        if self._store is not None:
            self._store.breaker_outcome(self._key, failed, self.settings)

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
        self._window.clear()
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
            self._window.last_success_at = probe_succeeded_at

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

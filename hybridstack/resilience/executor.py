"""The executor: run one plan, with the error taxonomy deciding every step.

``await executor.execute(plan, request, budget=..., call_id=...)`` tries the plan's
candidates and returns the first good answer; ``executor.stream(...)`` does the same
for a stream. The executor is the *only* retry loop in hybridstack: the adapters' SDK
clients run with ``max_retries=0``.

Policy, exactly as implemented
------------------------------

Each candidate of the plan is *fresh* (not tried yet), *waiting* (may be tried again
at a ready time) or *done* for this call. Before every attempt the executor picks:

1. the first fresh candidate in plan order that is still allowed (see the filters
   below) and whose quota scope is not throttled in this call; else
2. the waiting candidate with the earliest ready time (ties: plan order), sleeping
   until then — but never past the deadline (that raises ``BudgetExceededError``); else
3. the *parked* candidate (behind an open breaker) that may be tried first.

With ``RetrySettings(prefer_failover=False)`` a deployment that just failed with a
retry-here error is retried (after its backoff) before any fresh candidate.

Then the deployment's circuit breakers are asked (:meth:`BreakerRegistry.admit`). A
quota scope held by a Retry-After within ``retry_after_cap_s`` (or a deployment at its
warm-up cap) only defers it. An open breaker parks it *without a network call*: open
breakers are a last resort. Only when nothing fresh or waiting is left does the call
wait for a parked one — at most ``BreakerSettings.last_resort_wait_s`` in all, never
past the deadline — and ask again with ``last_resort=True``, so the first such call
becomes the breaker's (early) probe; a breaker that cannot admit one in time (opened by
a fail-over error, or a hold beyond the cap) skips the deployment for this call. Every
way out of a call awaits the event loop at least once, so failing calls retried in a
loop never starve it.

What one failed attempt does, by taxonomy kind:

* **retry here** (429, 5xx, 529, timeout, reset, stream cut): the deployment waits —
  for its Retry-After when one came (honoured exactly), else for tenacity's
  exponential backoff with jitter (``RetrySettings.backoff``) — and may be retried up
  to ``max_retries`` times. A Retry-After beyond ``retry_after_cap_s`` ends the
  deployment for this call at once (no wait). A throttle (429) also holds back every
  other candidate in the same quota scope until the same time — they go behind the
  rest of the plan (beyond the cap: they are dropped) — so one 429 is not sprayed
  across a shared key; the throttled deployment itself (plan order) is retried first.
  Across calls the breakers do the same (see :mod:`hybridstack.resilience.breaker`).
  With ``prefer_failover`` (default)
  the executor goes to the next healthy candidate immediately and only comes back to
  the waiting ones when the rest of the plan is exhausted: *fail over at once, back
  off only when retrying the same deployment*.
* **fail over** (bad key, quota, retired model, region blocked): the deployment and
  every candidate in its quota scope are dropped for this call.
* **content refused**: every candidate in the refusing jurisdiction is dropped; the
  next one is in another jurisdiction.
* **context too long**: only candidates whose context window is larger than the
  failed one's (``error.limit_tokens`` when the provider said, else the candidate's
  ``context_window``) stay.
* **fatal**: raised at once — the :class:`FatalError` itself, not a group.

When every candidate is done: one :class:`AllAttemptsFailedError` (an ExceptionGroup)
holding each failed attempt's error in order, then one :class:`DeploymentSkippedError`
per deployment that was never reached because a breaker was open; its message names
each deployment and why, the deployments dropped by the filters, and the plan's own
exclusions.

Budget (one per call)
---------------------
``Budget(deadline_s, max_attempts, max_cost_usd)``: each attempt runs under
``asyncio.timeout_at(deadline)``; a backoff that would end past the deadline is not
slept; ``max_attempts`` counts network attempts (hedges included, skips not);
``max_cost_usd`` refuses to start an attempt whose expected cost (the plan's
``expected_cost_usd``) would take the priced spend so far past the cap. Running out
raises :class:`BudgetExceededError` naming the budget and what was tried; its
``__cause__`` is an :class:`AllAttemptsFailedError` with the errors so far (when any).

Hedging (``HedgeSettings(enabled=True)``, :meth:`Executor.execute` only)
-------------------------------------------------------------------------
When the running attempt has not answered after ``delay_s`` (or the deployment's
measured p95 latency, floored at ``min_delay_s``; ``fallback_delay_s`` before any
measurement), the next fresh candidate in a region none of the running attempts is
in is started too (budget and breakers permitting; up to ``max_hedges``, one more
delay apart). A failure of one racer is handled by the policy above while the others
keep running. The first good answer wins; the others are
cancelled (task cancel: the SDK closes the HTTP request). Every attempt of a race is
recorded with ``hedged=True``; a cancelled one has outcome ``"cancelled"`` and the
usage known (none for a non-streamed call, so cost 0) — the provider (and the
emulator) still counts it as a request.

Streams (:meth:`Executor.stream`, never hedged)
-----------------------------------------------
The call and its deadline start when the caller starts iterating. A failure before
the first token (text or tool-call delta) fails over invisibly, by the same policy.
After it, ``stream_failover`` decides: ``"raise"`` raises
:class:`StreamInterruptedError` with the text the caller already received as
``partial_text`` and the provider error as ``cause``; ``"resume"`` continues on
another candidate — same family in another region first, then the same family, then
plan order — and, just before the new deployment's first token, yields a
:class:`StreamResumed` marker (``chars_before`` = text characters yielded so far).
The text after the marker is a *fresh, complete answer* to the same request from the
new deployment (the request is re-asked, not continued), so nothing is silently
spliced or duplicated; ``FinishEvent.response`` is that deployment's reply.

Ledger and events
-----------------
Every *network* attempt — ok, failed, cancelled, hedged — is one :class:`Attempt`
(``ledger.record``). Deployments skipped without a request (breaker open, scope held,
filtered out, no key) are **not** recorded, so the ledger matches what providers (and
the emulator's counters) saw; they are reported as :class:`ExecutionEvent` s
(``"breaker_open"`` / ``"skipped"``) and in the final error. ``outcome`` is ``"ok"``,
the error's ``kind``, or ``"cancelled"`` (hedge loser, deadline hit mid-attempt,
caller cancelled or stopped reading a stream). A hedge race where both answered
records both as ``"ok"`` (both were paid for); the call returns the first.
The returned ``ChatResponse.cost_usd`` is the whole call's priced cost (every attempt)
and ``attempts`` its number of network attempts. ``on_event`` and ``on_success``
callbacks run synchronously; an exception in them is logged, never raised.

Each request carries ``x-hybridstack-call: <call_id>`` and
``x-hybridstack-attempt: <call_id>-<attempt_index>`` headers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any, Literal

from hybridstack._secrets import scrub
from hybridstack.catalog.models import Deployment
from hybridstack.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    ConfigurationError,
    DeploymentSkippedError,
    NoRouteError,
    ProviderError,
    RetryableError,
    StreamInterruptedError,
)
from hybridstack.resilience.breaker import (
    BreakerAdmission,
    BreakerBlock,
    BreakerRegistry,
    is_throttle,
)
from hybridstack.resilience.pool import ProviderPool
from hybridstack.resilience.settings import Budget, HedgeSettings, RetrySettings
from hybridstack.types import (
    Attempt,
    ChatRequest,
    ChatResponse,
    FinishEvent,
    StreamEvent,
    StreamResumed,
    Usage,
)

if TYPE_CHECKING:
    from hybridstack.catalog.catalog import Catalog
    from hybridstack.ledger.base import Ledger
    from hybridstack.resilience.latency import LatencyTracker

__all__ = [
    "DeploymentSkippedError",
    "EventKind",
    "ExecutionEvent",
    "Executor",
    "Redactor",
]

logger = logging.getLogger("hybridstack.resilience")
_DEBUG = logging.DEBUG

EventKind = Literal[
    "attempt_failed", "retry", "failover", "hedge", "resumed", "skipped", "breaker_open"
]

#: ``(request, deployment) -> (request to send, {kind: count})``
Redactor = Callable[[ChatRequest, Deployment], tuple[ChatRequest, Mapping[str, int]]]

_ZERO_USAGE = Usage()
_ATTEMPT_TEMPLATE = Attempt(
    call_id="-", deployment="-", family="-", started_at=datetime(2000, 1, 1, tzinfo=UTC)
)
_DEFAULT_BUDGET = Budget()

_FRESH = 0
_WAIT = 1
_DONE = 2
#: Behind an open breaker: tried only when nothing fresh or waiting is left (last resort).
_PARKED = 3
#: Ready times this close count as a tie, broken by plan order: twins deferred by one
#: Retry-After hold are ready "at once", give or take the float arithmetic.
_TIE_S = 1e-3


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """Something the executor did for one call, for progress displays and alerting.

    ``kind``:

    * ``attempt_failed`` — an attempt on ``deployment`` failed (``error_kind``, ``message``);
    * ``retry`` — the same ``deployment`` is tried again after ``delay_s``;
    * ``failover`` — moving from ``deployment`` (failed) to ``to_deployment``
      (``delay_s`` > 0 when it had to wait);
    * ``hedge`` — ``to_deployment`` started racing ``deployment`` after ``delay_s``;
    * ``resumed`` — a stream broke on ``deployment`` and resumed on ``to_deployment``;
    * ``skipped`` — ``deployment`` dropped for this call without a request (filtered by
      an earlier error, no API key);
    * ``breaker_open`` — a breaker refused ``deployment`` (skipped, or deferred when
      ``delay_s`` is set), or this call's failure opened/held one (``message`` says).
    """

    kind: EventKind
    deployment: str
    to_deployment: str | None = None
    error_kind: str | None = None
    message: str = ""
    delay_s: float | None = None
    call_id: str = ""


class _Skipped(Exception):
    """Internal: the slot was dropped before a request (no provider could be built)."""


class _DeadlineHit(Exception):
    """Internal: the call's deadline passed while an attempt was running."""


class _StreamWatchdog:
    """Enforces a streamed attempt's deadline with one timer for the whole attempt.

    The timer cancels the task only while it is waiting for the provider's next event
    (``reading``); if it fires while the caller is busy with an event, the next read
    raises instead. A cancellation that is not ours is passed through untouched.
    """

    __slots__ = ("_handle", "_task", "cancelled", "fired", "reading")

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._task = asyncio.current_task()
        self.reading = False
        self.fired = False
        self.cancelled = False
        self._handle = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self.fired = True
        if self.reading and self._task is not None:
            self.cancelled = True
            self._task.cancel()

    def owns_cancellation(self) -> bool:
        """After a CancelledError during a read: True if it was this watchdog's alone."""
        return self.cancelled and self._task is not None and self._task.uncancel() == 0

    def close(self) -> None:
        self._handle.cancel()


class _Slot:
    """One candidate's state within one call."""

    __slots__ = (
        "admission",
        "block",
        "cand",
        "dep",
        "gate",
        "index",
        "ready_at",
        "state",
        "tries",
        "window",
    )

    def __init__(self, index: int, cand: Any, window: int) -> None:
        self.index = index
        self.cand = cand
        self.dep: Deployment = cand.deployment
        self.tries = 0
        self.state = _FRESH
        self.ready_at = 0.0
        self.window = window
        self.gate = "closed"
        #: The breakers' admission of the attempt in flight (handed back with its outcome).
        self.admission: BreakerAdmission | None = None
        #: While parked: the breaker block that parked it (for the error if it gives up).
        self.block: BreakerBlock | None = None


class _Run:
    """One launched attempt in a hedge race (its ``hedged`` flag may flip while it runs)."""

    __slots__ = ("hedged", "order", "slot")

    def __init__(self, slot: _Slot, order: int) -> None:
        self.slot = slot
        self.order = order
        self.hedged = False


class Executor:
    """Runs plans: retries, breakers, fail-over, hedging, budgets; records every attempt.

    Args:
        providers: the :class:`ProviderPool` (or a ``Deployment -> Provider`` factory).
        ledger: where attempts go (default: a new in-memory ledger).
        catalog: used for a candidate's context window when the plan leaves it out.
        retry, breakers, hedge: settings and the shared breaker registry.
        stream_failover: after a stream's first token: ``"raise"`` or ``"resume"``.
        latency: a ``LatencyTracker`` fed with each successful attempt's latency (and
            read for hedge delays).
        on_success: called with the deployment that answered (e.g. the router's
            ``record_choice``); exceptions are logged, never raised.
    """

    def __init__(
        self,
        *,
        providers: ProviderPool | Callable[[Deployment], Any],
        ledger: Ledger | None = None,
        catalog: Catalog | None = None,
        retry: RetrySettings | None = None,
        breakers: BreakerRegistry | None = None,
        hedge: HedgeSettings | None = None,
        stream_failover: Literal["raise", "resume"] = "raise",
        latency: LatencyTracker | None = None,
        on_success: Callable[[Deployment], Any] | None = None,
    ) -> None:
        if stream_failover not in ("raise", "resume"):
            raise ValueError(
                f"stream_failover must be 'raise' or 'resume', not {stream_failover!r}"
            )
        if not isinstance(providers, ProviderPool):
            providers = ProviderPool(providers)
        if ledger is None:
            from hybridstack.ledger.memory import MemoryLedger

            ledger = MemoryLedger()
        self.providers = providers
        self.ledger = ledger
        self.catalog = catalog
        self.retry = retry or RetrySettings()
        self.breakers = breakers or BreakerRegistry()
        self.hedge = hedge or HedgeSettings()
        self.stream_failover = stream_failover
        self.latency = latency
        self.on_success = on_success

    def __repr__(self) -> str:
        return (
            f"Executor(retry={self.retry!r}, hedge={self.hedge!r}, "
            f"stream_failover={self.stream_failover!r})"
        )

    async def execute(
        self,
        plan: Any,
        request: ChatRequest,
        *,
        budget: Budget | None = None,
        call_id: str | None = None,
        run_id: str | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
        redactions: Mapping[str, int] | None = None,
        redact: Redactor | None = None,
    ) -> ChatResponse:
        """Run ``plan`` for ``request``; the first good answer, priced for the whole call.

        Raises :class:`FatalError`, :class:`AllAttemptsFailedError`,
        :class:`BudgetExceededError` or :class:`NoRouteError` (an empty plan).
        ``redactions`` is recorded on every attempt as given; ``redact`` (a
        :data:`Redactor`, e.g. one wrapping :func:`hybridstack.routing.redact`) rewrites
        the request for attempts that leave the data's home jurisdiction, and its counts
        are recorded on those attempts.
        """
        call = _Call(self, plan, request, budget, call_id, run_id, on_event, redactions, redact)
        call.start()
        hedge = self.hedge
        if hedge.enabled and hedge.max_hedges > 0:
            return await call.run_hedged()
        return await call.run()

    def stream(
        self,
        plan: Any,
        request: ChatRequest,
        *,
        budget: Budget | None = None,
        call_id: str | None = None,
        run_id: str | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
        redactions: Mapping[str, int] | None = None,
        redact: Redactor | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream ``plan``'s answer: an async iterator of stream events ending in a FinishEvent.

        Fails over invisibly before the first token; after it, see ``stream_failover``.
        """
        call = _Call(self, plan, request, budget, call_id, run_id, on_event, redactions, redact)
        return call.run_stream()


class _Call:
    """The state of one ``execute``/``stream`` call."""

    def __init__(
        self,
        ex: Executor,
        plan: Any,
        request: ChatRequest,
        budget: Budget | None,
        call_id: str | None,
        run_id: str | None,
        on_event: Callable[[ExecutionEvent], None] | None,
        redactions: Mapping[str, int] | None,
        redact: Redactor | None,
    ) -> None:
        self.ex = ex
        self.plan = plan
        self.request = request
        self.budget = budget = budget or _DEFAULT_BUDGET
        self.call_id = call_id or uuid.uuid4().hex[:16]
        self.run_id = run_id
        self.on_event = on_event
        self.redactions: dict[str, int] = dict(redactions) if redactions else {}
        self.redact = redact
        self.loop: asyncio.AbstractEventLoop
        self.deadline: float | None = None
        self.skill = getattr(plan, "skill", None)
        self.data_class = getattr(plan, "data_class", None)
        catalog = ex.catalog
        slots = []
        for index, cand in enumerate(plan.candidates):
            window = getattr(cand, "context_window", 0) or 0
            if not window and catalog is not None:
                try:
                    window = catalog.context_window(cand.deployment)
                except Exception:
                    window = 0
            slots.append(_Slot(index, cand, window))
        self.slots: list[_Slot] = slots
        self.attempts = 0
        self.spent = 0.0
        self.errors: list[ProviderError] = []
        self.skips: list[ProviderError] = []
        self.not_tried: dict[str, str] = {}
        self.filters = False
        self.excluded_scopes: set[str] = set()
        self.excluded_jurisdictions: set[str] = set()
        self.min_window = 0
        self.throttled: dict[str, float] | None = None
        self.last_failed: _Slot | None = None
        self.resume_from: Deployment | None = None
        #: When the call first had to wait on an open breaker (its last resort).
        self.parked_since: float | None = None
        self.redacted: dict[str, tuple[ChatRequest, dict[str, int]]] | None = None

    def start(self) -> None:
        """The call starts now: its deadline counts from here."""
        self.loop = loop = asyncio.get_running_loop()
        deadline_s = self.budget.deadline_s
        self.deadline = loop.time() + deadline_s if deadline_s is not None else None

    # --- events and records -------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        deployment: str,
        *,
        to: str | None = None,
        error_kind: str | None = None,
        message: str = "",
        delay_s: float | None = None,
    ) -> None:
        callback = self.on_event
        debug = logger.isEnabledFor(_DEBUG)
        if callback is None and not debug:
            return
        event = ExecutionEvent(kind, deployment, to, error_kind, message, delay_s, self.call_id)
        if debug:
            logger.debug(
                "call %s: %s %s%s%s",
                self.call_id,
                kind,
                deployment,
                f" -> {to}" if to else "",
                f" ({message})" if message else "",
            )
        if callback is not None:
            try:
                callback(event)
            except Exception:
                logger.exception("on_event callback raised on %s event; ignored", kind)

    def record(
        self,
        slot: _Slot,
        index: int,
        retry_index: int,
        started_at: datetime,
        latency_s: float,
        outcome: str,
        *,
        usage: Usage = _ZERO_USAGE,
        cost: float = 0.0,
        error: BaseException | None = None,
        request_id: str | None = None,
        ttft_s: float | None = None,
        streamed: bool = False,
        hedged: bool = False,
        redactions: dict[str, int] | None = None,
    ) -> None:
        dep = slot.dep
        # The ledger is where error text is kept: scrub it here once, whoever built the
        # error (a custom Provider may put raw upstream text in a ProviderError).
        if isinstance(error, ProviderError):
            error_type: str | None = type(error).__name__
            error_message: str | None = scrub(error.message)
            status = error.status
            code = error.code
            retry_after = error.retry_after
            request_id = request_id or error.request_id
        elif error is not None:
            error_type = type(error).__name__
            error_message = scrub(str(error))[:500] or error_type
            status = code = retry_after = None
        else:
            error_type = error_message = status = code = retry_after = None
        # Copying a validated template with every field replaced skips validation; it is
        # several times cheaper than ``Attempt.model_construct`` under pydantic 2.1x.
        attempt = _ATTEMPT_TEMPLATE.model_copy(
            update=dict(
                call_id=self.call_id,
                run_id=self.run_id,
                attempt_index=index,
                retry_index=retry_index,
                deployment=dep.id,
                family=dep.family,
                model=dep.model,
                protocol=dep.protocol,
                region=dep.region,
                jurisdiction=dep.jurisdiction,
                quota_scope=dep.quota_scope,
                started_at=started_at,
                ttft_s=ttft_s,
                latency_s=latency_s,
                usage=usage,
                cost_usd=cost,
                outcome=outcome,
                error_type=error_type,
                error_message=error_message,
                status=status,
                provider_code=code,
                request_id=request_id,
                retry_after_s=retry_after,
                breaker_state=slot.gate,
                hedged=hedged,
                streamed=streamed,
                skill=self.skill,
                data_class=self.data_class,
                reasons=tuple(getattr(slot.cand, "reasons", ()) or ()),
                redactions=redactions if redactions is not None else self.redactions,
            )
        )
        if logger.isEnabledFor(_DEBUG):
            logger.debug(
                "attempt %s-%d on %s: %s in %.3fs (cost $%.6f)",
                self.call_id,
                index,
                dep.id,
                outcome,
                latency_s,
                cost,
            )
        try:
            # Built here for the ledger alone: hand it over without another copy.
            self.ex.ledger.record(attempt, owned=True)
        except Exception:
            logger.exception("the ledger failed to record attempt %s-%d", self.call_id, index)

    def _succeeded(self, slot: _Slot, response: ChatResponse) -> ChatResponse:
        """The winner's bookkeeping (callbacks) and the call-level fields of its reply."""
        callback = self.ex.on_success
        if callback is not None:
            try:
                callback(slot.dep)
            except Exception:
                logger.exception("on_success callback raised for %s; ignored", slot.dep.id)
        return response.model_copy(update={"cost_usd": self.spent, "attempts": self.attempts})

    # --- selection ------------------------------------------------------------------

    def _filtered(self, slot: _Slot) -> str | None:
        dep = slot.dep
        if dep.quota_scope in self.excluded_scopes:
            return f"its quota scope {dep.quota_scope!r} failed over earlier in this call"
        if dep.jurisdiction in self.excluded_jurisdictions:
            return f"content was refused in jurisdiction {dep.jurisdiction} earlier in this call"
        if self.min_window and slot.window < self.min_window:
            return (
                f"its context window ({slot.window} tokens) is not larger than the "
                f"{self.min_window - 1} tokens that were too small"
            )
        return None

    def _drop(self, slot: _Slot, why: str) -> None:
        slot.state = _DONE
        if slot.tries == 0:
            self.not_tried[slot.dep.id] = why
        self.emit("skipped", slot.dep.id, message=why)

    def _select(self, now: float) -> tuple[_Slot | None, float]:
        if not self.ex.retry.prefer_failover:
            sticky = self.last_failed
            if sticky is not None and sticky.state == _WAIT:
                why = self._filtered(sticky) if self.filters else None
                if why is None:
                    return sticky, sticky.ready_at
                self._drop(sticky, why)
        resume = self.resume_from
        best_fresh: _Slot | None = None
        best_rank = 3
        best_wait: _Slot | None = None
        best_parked: _Slot | None = None
        throttled = self.throttled
        for slot in self.slots:
            state = slot.state
            if state == _DONE:
                continue
            if self.filters:
                why = self._filtered(slot)
                if why is not None:
                    self._drop(slot, why)
                    continue
            if throttled is not None:
                # A throttle holds back every member of the quota scope in this call.
                until = throttled.get(slot.dep.quota_scope)
                if until is not None and until > now:
                    if until == math.inf:
                        self._drop(
                            slot,
                            f"its quota scope {slot.dep.quota_scope!r} was throttled with a "
                            f"Retry-After beyond the {self.ex.retry.retry_after_cap_s}s cap",
                        )
                        continue
                    slot.state = state = _WAIT
                    slot.ready_at = max(slot.ready_at, until)
            if state == _FRESH:
                if resume is None:
                    return slot, now
                rank = _resume_rank(slot.dep, resume)
                if rank < best_rank:
                    best_fresh, best_rank = slot, rank
            elif state == _WAIT:
                if best_wait is None or slot.ready_at < best_wait.ready_at - _TIE_S:
                    best_wait = slot
            elif best_parked is None or slot.ready_at < best_parked.ready_at - _TIE_S:
                best_parked = slot
        if best_fresh is not None:
            return best_fresh, now
        if best_wait is not None:
            return best_wait, best_wait.ready_at
        if best_parked is not None:
            # Open breakers are a last resort: only when nothing else is left.
            return best_parked, best_parked.ready_at
        return None, now

    def _blocked(self, slot: _Slot, block: BreakerBlock) -> None:
        """A breaker refused ``slot`` now: defer it, park it as a last resort, or skip it."""
        now = self.loop.time()
        retry_in = block.retry_in_s
        dep_id = slot.dep.id
        deadline = self.deadline
        if (
            block.reason in ("hold", "warmup")
            and retry_in is not None
            and retry_in <= self.ex.retry.retry_after_cap_s
            and (deadline is None or now + retry_in < deadline)
        ):
            slot.state = _WAIT
            slot.ready_at = now + retry_in + 0.001
            self.emit(
                "breaker_open", dep_id, message=f"deferred: {block.describe()}", delay_s=retry_in
            )
            return
        later = block.last_resort_in_s
        cap = self.ex.breakers.settings.last_resort_wait_s
        if (
            later is not None
            and cap > 0
            and later <= cap
            and (deadline is None or now + later < deadline)
        ):
            # Behind an open breaker: tried again only when nothing else is left.
            parked_before = slot.state == _PARKED
            slot.state = _PARKED
            slot.ready_at = now + later
            slot.block = block
            if not parked_before:
                self.emit(
                    "breaker_open",
                    dep_id,
                    message=f"behind an open breaker (a last resort): {block.describe()}",
                    delay_s=later,
                )
            return
        self._skip(slot, block)

    def _skip(self, slot: _Slot, block: BreakerBlock) -> None:
        """Done for this call without a request (it stays in the error as skipped)."""
        retry_in = block.retry_in_s
        dep_id = slot.dep.id
        slot.state = _DONE
        why = f"skipped without a request: {block.describe()}"
        if slot.tries == 0:
            self.skips.append(
                DeploymentSkippedError(
                    why,
                    deployment=dep_id,
                    code="quota_scope_open" if block.scope else "breaker_open",
                    retry_after=retry_in,
                )
            )
        self.emit("breaker_open", dep_id, message=why, delay_s=retry_in)

    def _check_budget(self, slot: _Slot, *, hedge: bool = False) -> bool:
        budget = self.budget
        if budget.max_attempts is not None and self.attempts >= budget.max_attempts:
            if hedge:
                return False
            raise self.budget_error(
                "attempts", f"all {budget.max_attempts} attempts were used; next was {slot.dep.id}"
            )
        if budget.max_cost_usd is not None:
            expected = getattr(slot.cand, "expected_cost_usd", 0.0) or 0.0
            # Written so that a NaN cost is refused: NaN > cap would be False.
            if not self.spent + expected <= budget.max_cost_usd:
                if hedge:
                    return False
                raise self.budget_error(
                    "cost",
                    f"${self.spent:.6f} spent and the next attempt ({slot.dep.id}) is expected "
                    f"to cost ${expected:.6f}, over the ${budget.max_cost_usd:.6f} cap",
                )
        return True

    async def next_slot(self) -> _Slot:
        """The next candidate to send a request to (sleeping for backoff if needed)."""
        try:
            return await self._next_slot()
        except Exception:
            # Every way out of a call awaits at least once: a call that fails without a
            # request (every breaker open) must not starve the event loop when a caller
            # retries it in a loop.
            await asyncio.sleep(0)
            raise

    async def _next_slot(self) -> _Slot:
        loop = self.loop
        while True:
            now = loop.time()
            slot, ready_at = self._select(now)
            if slot is None:
                raise self.exhausted()
            self._check_budget(slot)
            wait = ready_at - now
            deadline = self.deadline
            parked = slot.state == _PARKED
            if parked:
                since = self.parked_since
                if since is None:
                    since = self.parked_since = now
                limit = since + self.ex.breakers.settings.last_resort_wait_s
                if deadline is not None:
                    limit = min(limit, deadline)
                if ready_at > limit:
                    # Nothing can be sent here in time: skipped, with the breaker's reason.
                    assert slot.block is not None
                    self._skip(slot, slot.block)
                    continue
            if deadline is not None and max(now, ready_at) >= deadline:
                if wait > 0:
                    detail = (
                        f"the next try ({slot.dep.id}) is due in {wait:.2f}s, after the "
                        f"{self.budget.deadline_s}s deadline"
                    )
                else:
                    detail = f"the {self.budget.deadline_s}s deadline passed"
                raise self.budget_error("deadline", detail)
            if wait > 0:
                await asyncio.sleep(wait)
            gate = self.ex.breakers.admit(slot.dep, last_resort=parked)
            if gate.__class__ is BreakerBlock:
                self._blocked(slot, gate)
                continue
            self._admitted(slot, gate)  # type: ignore[arg-type]
            failed = self.last_failed
            if failed is not None:
                self.last_failed = None
                if failed is slot:
                    self.emit("retry", slot.dep.id, delay_s=max(0.0, wait))
                else:
                    self.emit("failover", failed.dep.id, to=slot.dep.id, delay_s=max(0.0, wait))
            return slot

    @staticmethod
    def _admitted(slot: _Slot, admission: BreakerAdmission) -> None:
        slot.admission = admission
        slot.gate = admission.state
        slot.block = None

    async def provider_for(self, slot: _Slot) -> Any:
        """The slot's provider, made ready (SDK imported, client built) off the event loop.

        Runs before the attempt is counted or its deadline context entered: time spent
        importing an SDK is never an attempt, let alone a provider timeout.
        """
        pool = self.ex.providers
        provider = pool.ready(slot.dep)
        if provider is not None:
            return provider
        try:
            if self.deadline is None:
                provider = await pool.aget(slot.dep)
            else:
                # The import goes on in its thread if the deadline cuts this wait short.
                async with asyncio.timeout_at(self.deadline):
                    provider = await pool.aget(slot.dep)
        except TimeoutError:
            provider = None  # the deadline passed while loading: handled below
        except ConfigurationError as exc:
            # A deployment that cannot be built (no key …) is skipped, never sent.
            self.ex.breakers.release(slot.dep, slot.admission)
            slot.state = _DONE
            why = f"skipped without a request: {exc}"
            self.skips.append(
                DeploymentSkippedError(why, deployment=slot.dep.id, code="configuration")
            )
            self.emit("skipped", slot.dep.id, message=why)
            raise _Skipped from exc
        except BaseException:
            self.ex.breakers.release(slot.dep, slot.admission)
            raise
        if provider is None or self.past_deadline():
            self.ex.breakers.release(slot.dep, slot.admission)
            raise self.budget_error(
                "deadline",
                f"the {self.budget.deadline_s}s deadline passed while the {slot.dep.protocol} "
                f"SDK for {slot.dep.id} was loading, before any request was sent "
                "(`await stack.warm_up()` at start-up loads it ahead)",
            )
        return provider

    def request_for(self, slot: _Slot) -> tuple[ChatRequest, dict[str, int] | None]:
        """The request to send to ``slot`` and the redaction counts to record with it.

        The redactor runs only for attempts that leave the data's home jurisdiction.
        """
        redact = self.redact
        if redact is None:
            return self.request, None
        dep = slot.dep
        if not _leaves_home(slot.cand, dep, self.plan, self.request):
            return self.request, None
        cache = self.redacted
        if cache is None:
            cache = self.redacted = {}
        hit = cache.get(dep.id)
        if hit is None:
            request, counts = redact(self.request, dep)
            merged = dict(self.redactions)
            for kind, count in counts.items():
                merged[kind] = merged.get(kind, 0) + count
            hit = cache[dep.id] = (request, merged)
        return hit

    # --- errors ------------------------------------------------------------------------

    def on_error(self, slot: _Slot, error: ProviderError) -> None:
        """Apply one failed attempt to the breakers and this call's plan; raises if fatal."""
        self.errors.append(error)
        dep = slot.dep
        kind = error.kind
        self.emit("attempt_failed", dep.id, error_kind=kind, message=error.message)
        for name in self.ex.breakers.record_failure(dep, error, slot.admission):
            self.emit(
                "breaker_open",
                dep.id,
                error_kind=kind,
                message=f"{name} opened or held by this failure",
            )
        self.last_failed = slot
        slot.state = _DONE
        if kind == "retry_here":
            retry = self.ex.retry
            retry_after = error.retry_after
            beyond = retry_after is not None and retry_after > retry.retry_after_cap_s
            now = self.loop.time()
            wait = retry_after if retry_after is not None else retry.backoff(slot.tries)
            if not beyond and slot.tries <= retry.max_retries:
                slot.state = _WAIT
                slot.ready_at = now + wait
            if is_throttle(error):
                throttled = self.throttled
                if throttled is None:
                    throttled = self.throttled = {}
                scope = dep.quota_scope
                throttled[scope] = max(
                    throttled.get(scope, 0.0), math.inf if beyond else now + wait
                )
        elif kind == "fail_over":
            self.excluded_scopes.add(dep.quota_scope)
            self.filters = True
        elif kind == "content_refused":
            self.excluded_jurisdictions.add(dep.jurisdiction)
            self.filters = True
        elif kind == "context_too_long":
            limit = getattr(error, "limit_tokens", None) or slot.window
            self.min_window = max(self.min_window, limit + 1)
            self.filters = True
        else:
            raise error

    def _failure_lines(self) -> list[str]:
        lines: list[str] = []
        for error in self.errors:
            details = ", ".join(
                f"{name}={value}"
                for name, value in (
                    ("status", error.status),
                    ("code", error.code),
                    ("retry_after", error.retry_after),
                )
                if value is not None
            )
            suffix = f" ({details})" if details else ""
            lines.append(f"  - {error.deployment}: {error.kind}: {error.message}{suffix}")
        if self.skips:
            lines.append("skipped without a request:")
            lines.extend(f"  - {e.deployment}: {e.message}" for e in self.skips)
        if self.not_tried:
            lines.append("not tried:")
            lines.extend(f"  - {dep}: {why}" for dep, why in self.not_tried.items())
        excluded = getattr(self.plan, "excluded", None) or {}
        if excluded:
            lines.append("excluded by the plan:")
            lines.extend(f"  - {dep}: {why}" for dep, why in excluded.items())
        return lines

    def _group(self) -> AllAttemptsFailedError | None:
        errors: list[Exception] = [*self.errors, *self.skips]
        if not errors:
            return None
        tried = len(dict.fromkeys(e.deployment for e in self.errors))
        if self.errors:
            head = f"all {len(self.errors)} attempt(s) on {tried} deployment(s) failed:"
        else:
            head = "no request was sent: every planned deployment was skipped"
        return AllAttemptsFailedError("\n".join([head, *self._failure_lines()]), errors)

    def exhausted(self) -> Exception:
        group = self._group()
        if group is not None:
            return group
        excluded = dict(getattr(self.plan, "excluded", None) or {})
        excluded.update(self.not_tried)
        if not self.slots:
            return NoRouteError("the plan has no candidates to try", excluded)
        return NoRouteError("no planned deployment could be tried", excluded)

    def budget_error(self, which: str, detail: str) -> BudgetExceededError:
        tried = ", ".join(f"{e.deployment} ({e.kind})" for e in self.errors) or "no failed attempts"
        message = (
            f"{which} budget exceeded: {detail}; {self.attempts} attempt(s), "
            f"${self.spent:.6f} spent; tried: {tried}"
        )
        error = BudgetExceededError(message, budget=which)
        error.errors = tuple(self.errors)  # type: ignore[attr-defined]
        group = self._group()
        if group is not None:
            error.__cause__ = group
        return error

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.loop.time() >= self.deadline - 1e-3

    # --- one non-streamed attempt ---------------------------------------------------------

    async def attempt(self, slot: _Slot, run: _Run | None = None) -> ChatResponse:
        """Send one request; records it; returns the reply or raises its error."""
        provider = await self.provider_for(slot)
        index = self.attempts
        self.attempts = index + 1
        retry_index = slot.tries
        slot.tries = retry_index + 1
        dep = slot.dep
        admission = slot.admission
        call_id = self.call_id
        headers = {"x-hybridstack-call": call_id, "x-hybridstack-attempt": f"{call_id}-{index}"}
        request, redactions = (
            (self.request, None) if self.redact is None else self.request_for(slot)
        )
        started_at = datetime.now(UTC)
        t0 = perf_counter()
        deadline = self.deadline
        try:
            if deadline is None:
                response: ChatResponse = await provider.complete(request, extra_headers=headers)
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        response = await provider.complete(request, extra_headers=headers)
                except TimeoutError as exc:
                    if self.past_deadline():
                        raise _DeadlineHit from None
                    raise RetryableError(
                        f"the attempt timed out: {exc}", deployment=dep.id, code="timeout"
                    ) from exc
        except ProviderError as error:
            latency = perf_counter() - t0
            self.record(
                slot, index, retry_index, started_at, latency, error.kind,
                error=error, hedged=run is not None and run.hedged, redactions=redactions,
            )  # fmt: skip
            raise
        except _DeadlineHit:
            self.record(
                slot, index, retry_index, started_at, perf_counter() - t0, "cancelled",
                error=TimeoutError("the call's deadline passed during this attempt"),
                hedged=run is not None and run.hedged, redactions=redactions,
            )  # fmt: skip
            self.ex.breakers.release(dep, admission)
            raise self.budget_error(
                "deadline",
                f"the {self.budget.deadline_s}s deadline passed during an attempt on {dep.id}",
            ) from None
        except asyncio.CancelledError:
            self.record(
                slot, index, retry_index, started_at, perf_counter() - t0, "cancelled",
                hedged=run is not None and run.hedged, redactions=redactions,
            )  # fmt: skip
            self.ex.breakers.release(dep, admission)
            raise
        except Exception as exc:
            # Not a taxonomy error: an adapter bug. Record it, then let it surface.
            self.record(
                slot, index, retry_index, started_at, perf_counter() - t0, "fatal",
                error=exc, hedged=run is not None and run.hedged, redactions=redactions,
            )  # fmt: skip
            self.ex.breakers.release(dep, admission)
            raise
        latency = perf_counter() - t0
        usage = response.usage
        cost = _cost(dep, usage, started_at)
        self.spent += cost
        ex = self.ex
        ex.breakers.record_success(dep, admission)
        self.record(
            slot, index, retry_index, started_at, latency, "ok",
            usage=usage, cost=cost, request_id=response.request_id,
            hedged=run is not None and run.hedged, redactions=redactions,
        )  # fmt: skip
        if ex.latency is not None:
            ex.latency.observe(dep.id, latency)
        return response

    # --- execute() -------------------------------------------------------------------------

    async def run(self) -> ChatResponse:
        while True:
            slot = await self.next_slot()
            try:
                response = await self.attempt(slot)
            except ProviderError as error:
                self.on_error(slot, error)
                continue
            except _Skipped:
                continue
            return self._succeeded(slot, response)

    def _hedge_delay(self, dep: Deployment) -> float:
        hedge = self.ex.hedge
        if hedge.delay_s is not None:
            return hedge.delay_s
        latency = self.ex.latency
        p95 = latency.p95(dep.id) if latency is not None else None
        if p95 is None:
            return hedge.fallback_delay_s
        return max(hedge.min_delay_s, p95)

    def _hedge_target(self, running: list[_Slot]) -> _Slot | None:
        regions = {s.dep.region for s in running}
        now = self.loop.time()
        throttled = self.throttled
        for slot in self.slots:
            if slot.state != _FRESH:
                continue
            if self.filters:
                why = self._filtered(slot)
                if why is not None:
                    self._drop(slot, why)
                    continue
            if slot.dep.region in regions:
                continue
            if throttled is not None and throttled.get(slot.dep.quota_scope, 0.0) > now:
                continue
            if not self._check_budget(slot, hedge=True):
                return None
            gate = self.ex.breakers.admit(slot.dep)
            if gate.__class__ is BreakerBlock:
                self._blocked(slot, gate)
                continue
            self._admitted(slot, gate)  # type: ignore[arg-type]
            return slot
        return None

    async def run_hedged(self) -> ChatResponse:
        loop = self.loop
        inflight: dict[asyncio.Task[ChatResponse], _Run] = {}
        hedges_left = self.ex.hedge.max_hedges
        launched = 0
        primary: _Run | None = None
        primary_at = hedge_at = 0.0
        try:
            while True:
                if not inflight:
                    slot = await self.next_slot()
                    primary = _Run(slot, launched)
                    launched += 1
                    inflight[loop.create_task(self.attempt(slot, primary))] = primary
                    primary_at = loop.time()
                    hedge_at = primary_at + self._hedge_delay(slot.dep)
                timeout = max(0.0, hedge_at - loop.time()) if hedges_left > 0 else None
                done, _ = await asyncio.wait(
                    inflight, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    hedges_left -= 1
                    assert primary is not None
                    # A further hedge (max_hedges > 1) waits one more delay.
                    hedge_at = loop.time() + self._hedge_delay(primary.slot.dep)
                    target = self._hedge_target([r.slot for r in inflight.values()])
                    if target is not None:
                        run = _Run(target, launched)
                        launched += 1
                        run.hedged = True
                        for other in inflight.values():
                            other.hedged = True
                        inflight[loop.create_task(self.attempt(target, run))] = run
                        self.emit(
                            "hedge",
                            primary.slot.dep.id,
                            to=target.dep.id,
                            delay_s=loop.time() - primary_at,
                        )
                    continue
                winner: tuple[_Slot, ChatResponse] | None = None
                failure: BaseException | None = None
                for task in sorted(done, key=lambda t: inflight[t].order):
                    run = inflight.pop(task)
                    if task.cancelled():
                        continue
                    exc = task.exception()
                    if exc is None:
                        if winner is None:
                            winner = (run.slot, task.result())
                    elif isinstance(exc, ProviderError):
                        if winner is None and failure is None:
                            try:
                                self.on_error(run.slot, exc)
                            except ProviderError as fatal:
                                failure = fatal
                        else:
                            self.errors.append(exc)
                            self.ex.breakers.record_failure(run.slot.dep, exc, run.slot.admission)
                    elif not isinstance(exc, _Skipped) and failure is None:
                        failure = exc
                if winner is not None:
                    await _cancel_all(inflight)
                    return self._succeeded(*winner)
                if failure is not None:
                    raise failure
        finally:
            if inflight:
                await _cancel_all(inflight)

    # --- stream() --------------------------------------------------------------------------

    async def run_stream(self) -> AsyncIterator[StreamEvent]:
        # The call (and its deadline) starts when the caller starts iterating.
        self.start()
        ex = self.ex
        emitted_chars = 0
        marker: tuple[str, str] | None = None
        while True:
            slot = await self.next_slot()
            try:
                provider = await self.provider_for(slot)
            except _Skipped:
                continue
            index = self.attempts
            self.attempts = index + 1
            retry_index = slot.tries
            slot.tries = retry_index + 1
            dep = slot.dep
            headers = {
                "x-hybridstack-call": self.call_id,
                "x-hybridstack-attempt": f"{self.call_id}-{index}",
            }
            request, redactions = (
                (self.request, None) if not self.redact else self.request_for(slot)
            )
            started_at = datetime.now(UTC)
            t0 = perf_counter()
            events = provider.stream(request, extra_headers=headers)
            got_first = False
            ttft: float | None = None
            usage: Usage | None = None
            parts: list[str] = []
            recorded = False
            # One timer per attempt, not one per event: a timeout context around every
            # __anext__ cost about 1 ms per streamed reply (see benchmarks/bench_overhead.py).
            watchdog = None if self.deadline is None else _StreamWatchdog(self.loop, self.deadline)
            try:
                while True:
                    try:
                        if watchdog is None:
                            event = await events.__anext__()
                        else:
                            # Inlined watchdog read (a helper coroutine per event costs).
                            if watchdog.fired:
                                raise _DeadlineHit
                            watchdog.reading = True
                            try:
                                event = await events.__anext__()
                            except asyncio.CancelledError:
                                if watchdog.owns_cancellation():
                                    raise _DeadlineHit from None
                                raise
                            finally:
                                watchdog.reading = False
                    except StopAsyncIteration:
                        raise RetryableError(
                            "the stream ended without a finish event",
                            deployment=dep.id,
                            code="stream_cut",
                            partial_text="".join(parts),
                        ) from None
                    except TimeoutError as exc:
                        if self.past_deadline():
                            raise _DeadlineHit from None
                        raise RetryableError(
                            f"the stream timed out: {exc}",
                            deployment=dep.id,
                            code="timeout",
                            partial_text="".join(parts),
                        ) from exc
                    etype = event.type
                    if etype == "text" or etype == "tool_call":
                        if not got_first:
                            got_first = True
                            ttft = perf_counter() - t0
                            if marker is not None:
                                yield StreamResumed(
                                    from_deployment=marker[0],
                                    to_deployment=dep.id,
                                    chars_before=emitted_chars,
                                    reason=marker[1],
                                )
                                self.emit("resumed", marker[0], to=dep.id, message=marker[1])
                                marker = None
                                self.resume_from = None
                        if etype == "text":
                            parts.append(event.text)
                            emitted_chars += len(event.text)
                        yield event
                    elif etype == "finish":
                        response = event.response
                        latency = perf_counter() - t0
                        final_usage = response.usage
                        cost = _cost(dep, final_usage, started_at)
                        self.spent += cost
                        ex.breakers.record_success(dep, slot.admission)
                        recorded = True
                        self.record(
                            slot, index, retry_index, started_at, latency, "ok",
                            usage=final_usage, cost=cost, request_id=response.request_id,
                            ttft_s=ttft, streamed=True, redactions=redactions,
                        )  # fmt: skip
                        if ex.latency is not None:
                            ex.latency.observe(dep.id, latency)
                        final = self._succeeded(slot, response)
                        if final.ttft_s is None and ttft is not None:
                            final = final.model_copy(update={"ttft_s": ttft})
                        yield FinishEvent(finish_reason=event.finish_reason, response=final)
                        return
                    else:
                        if etype == "usage":
                            usage = event.usage
                        yield event
            except ProviderError as error:
                cost = _cost(dep, usage, started_at)
                self.spent += cost
                recorded = True
                self.record(
                    slot, index, retry_index, started_at, perf_counter() - t0, error.kind,
                    usage=usage or _ZERO_USAGE, cost=cost, error=error, ttft_s=ttft,
                    streamed=True, redactions=redactions,
                )  # fmt: skip
                self.on_error(slot, error)  # raises a fatal error
                if got_first:
                    if ex.stream_failover == "raise":
                        partial = "".join(parts)
                        raise StreamInterruptedError(
                            f"the stream from {dep.id} broke after {len(partial)} characters "
                            f"({error.kind}: {error.message}); stream_failover='raise' keeps "
                            f"the partial text (use 'resume' to continue on another deployment)",
                            partial_text=partial,
                            cause=error,
                        ) from error
                    marker = (dep.id, f"{error.kind}: {error.message}")
                    self.resume_from = dep
                continue
            except _DeadlineHit:
                recorded = True
                cost = _cost(dep, usage, started_at)
                self.spent += cost
                self.record(
                    slot, index, retry_index, started_at, perf_counter() - t0, "cancelled",
                    usage=usage or _ZERO_USAGE, cost=cost,
                    error=TimeoutError("the call's deadline passed during this attempt"),
                    ttft_s=ttft, streamed=True, redactions=redactions,
                )  # fmt: skip
                ex.breakers.release(dep, slot.admission)
                raise self.budget_error(
                    "deadline",
                    f"the {self.budget.deadline_s}s deadline passed while streaming from {dep.id}",
                ) from None
            except BaseException as exc:
                # The caller stopped reading (GeneratorExit), was cancelled, or an adapter bug.
                if not recorded:
                    recorded = True
                    cost = _cost(dep, usage, started_at)
                    self.spent += cost
                    unexpected = isinstance(exc, Exception)
                    self.record(
                        slot, index, retry_index, started_at, perf_counter() - t0,
                        "fatal" if unexpected else "cancelled", usage=usage or _ZERO_USAGE,
                        cost=cost, error=exc if unexpected else None, ttft_s=ttft,
                        streamed=True, redactions=redactions,
                    )  # fmt: skip
                    ex.breakers.release(dep, slot.admission)
                raise
            finally:
                if watchdog is not None:
                    watchdog.close()
                aclose = getattr(events, "aclose", None)
                if aclose is not None:
                    try:
                        await aclose()
                    except Exception:
                        logger.debug("closing the stream of %s failed", dep.id, exc_info=True)


def _cost(dep: Deployment, usage: Usage | None, started_at: datetime) -> float:
    """The attempt's cost: the catalog price's tier and time-of-day window at its start."""
    if usage is None:
        return 0.0
    return dep.price.cost(
        usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, at=started_at
    )


def _leaves_home(cand: Any, dep: Deployment, plan: Any, request: ChatRequest) -> bool:
    """Whether an attempt on ``dep`` takes the data out of its home jurisdiction."""
    leaves = getattr(cand, "leaves_home", None)
    if leaves is not None:
        return bool(leaves)
    home = getattr(plan, "home_jurisdiction", None) or request.metadata.get("home_jurisdiction")
    return dep.jurisdiction != (home or "LOCAL").upper()


def _resume_rank(dep: Deployment, broken: Deployment) -> int:
    if dep.family == broken.family:
        return 0 if dep.region != broken.region else 1
    return 2


async def _cancel_all(inflight: dict[asyncio.Task[Any], _Run]) -> None:
    tasks = list(inflight)
    inflight.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- personal data redaction (redact=True) -------------------------------------------------

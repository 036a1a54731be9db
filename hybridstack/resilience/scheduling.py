"""Scheduling: which candidate of a call goes next, when, and what one failure changes.

Each candidate of the plan is *fresh* (not tried yet), *waiting* (may be tried again at
a ready time), *parked* (behind an open breaker, a last resort) or *done* for the call.
:meth:`Scheduler.next_slot` picks the next one (the first fresh one in plan order, else
the earliest waiting one, else the parked one), sleeps until it is ready (never past
the deadline), checks the budget and asks its breakers; :meth:`Scheduler.on_error`
applies one failed attempt's taxonomy kind to the rest of the call. The whole policy,
in words, is in ``docs/resilience.md``.
"""

from __future__ import annotations

import asyncio
import math

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.resilience.breaker import BreakerAdmission, BreakerBlock, is_throttle
from hybridstack.resilience.call import DONE, FRESH, PARKED, WAIT, Call, Slot
from hybridstack.resilience.reporting import DeploymentSkippedError, budget_error, exhausted

__all__ = ["Scheduler"]

#: Ready times this close count as a tie, broken by plan order: twins deferred by one
#: Retry-After hold are ready "at once", give or take the float arithmetic.
_TIE_S = 1e-3


class Scheduler:
    """Slot selection, waits and breaker gating for one :class:`Call`."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.retry = call.ex.retry
        self.breakers = call.ex.breakers
        #: True once an error made some candidates unfit (checked on every selection).
        self.filters = False
        self.excluded_scopes: set[str] = set()
        self.excluded_jurisdictions: set[str] = set()
        self.min_window = 0
        #: quota scope -> held until (loop time; inf: beyond the Retry-After cap).
        self.throttled: dict[str, float] | None = None
        self.last_failed: Slot | None = None
        #: A broken stream's deployment: fresh candidates are ranked by closeness to it.
        self.resume_from: Deployment | None = None
        #: When the call first had to wait on an open breaker (its last resort).
        self.parked_since: float | None = None

    # --- filters ---------------------------------------------------------------------

    def filtered(self, slot: Slot) -> str | None:
        """Why an earlier error of this call rules ``slot`` out (None: it does not)."""
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

    def usable(self, slot: Slot) -> bool:
        """False (and ``slot`` dropped) when an earlier error of this call rules it out."""
        if not self.filters:
            return True
        why = self.filtered(slot)
        if why is None:
            return True
        self.drop(slot, why)
        return False

    def drop(self, slot: Slot, why: str) -> None:
        slot.state = DONE
        if slot.tries == 0:
            self.call.not_tried[slot.dep.id] = why
        self.call.emit("skipped", slot.dep.id, message=why)

    def held(self, slot: Slot, now: float) -> bool:
        """Whether a throttle of ``slot``'s quota scope holds it back at ``now``."""
        throttled = self.throttled
        return throttled is not None and throttled.get(slot.dep.quota_scope, 0.0) > now

    # --- selection ---------------------------------------------------------------------

    def select(self, now: float) -> tuple[Slot | None, float]:
        """The next slot and when it is ready (None: every slot is done)."""
        if not self.retry.prefer_failover:
            sticky = self.last_failed
            if sticky is not None and sticky.state == WAIT:
                why = self.filtered(sticky) if self.filters else None
                if why is None:
                    return sticky, sticky.ready_at
                self.drop(sticky, why)
        resume = self.resume_from
        best_fresh: Slot | None = None
        best_rank = 3
        best_wait: Slot | None = None
        best_parked: Slot | None = None
        throttled = self.throttled
        for slot in self.call.slots:
            state = slot.state
            if state == DONE:
                continue
            if self.filters:
                why = self.filtered(slot)
                if why is not None:
                    self.drop(slot, why)
                    continue
            if throttled is not None:
                # A throttle holds back every member of the quota scope in this call.
                until = throttled.get(slot.dep.quota_scope)
                if until is not None and until > now:
                    if until == math.inf:
                        self.drop(
                            slot,
                            f"its quota scope {slot.dep.quota_scope!r} was throttled with a "
                            f"Retry-After beyond the {self.retry.retry_after_cap_s}s cap",
                        )
                        continue
                    slot.state = state = WAIT
                    slot.ready_at = max(slot.ready_at, until)
            if state == FRESH:
                if resume is None:
                    return slot, now
                rank = _resume_rank(slot.dep, resume)
                if rank < best_rank:
                    best_fresh, best_rank = slot, rank
            elif state == WAIT:
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

    # --- breaker gating ----------------------------------------------------------------

    def admit(self, slot: Slot, *, last_resort: bool = False) -> bool:
        """Ask ``slot``'s breakers; on a refusal it is deferred, parked or skipped."""
        gate = self.breakers.admit(slot.dep, last_resort=last_resort)
        if gate.__class__ is BreakerBlock:
            self.blocked(slot, gate)
            return False
        _admitted(slot, gate)  # type: ignore[arg-type]
        return True

    def blocked(self, slot: Slot, block: BreakerBlock) -> None:
        """A breaker refused ``slot`` now: defer it, park it as a last resort, or skip it."""
        call = self.call
        now = call.loop.time()
        retry_in = block.retry_in_s
        dep_id = slot.dep.id
        deadline = call.deadline
        if (
            block.reason in ("hold", "warmup")
            and retry_in is not None
            and retry_in <= self.retry.retry_after_cap_s
            and (deadline is None or now + retry_in < deadline)
        ):
            slot.state = WAIT
            slot.ready_at = now + retry_in + 0.001
            call.emit(
                "breaker_open", dep_id, message=f"deferred: {block.describe()}", delay_s=retry_in
            )
            return
        later = block.last_resort_in_s
        cap = self.breakers.settings.last_resort_wait_s
        if (
            later is not None
            and cap > 0
            and later <= cap
            and (deadline is None or now + later < deadline)
        ):
            # Behind an open breaker: tried again only when nothing else is left.
            parked_before = slot.state == PARKED
            slot.state = PARKED
            slot.ready_at = now + later
            slot.block = block
            if not parked_before:
                call.emit(
                    "breaker_open",
                    dep_id,
                    message=f"behind an open breaker (a last resort): {block.describe()}",
                    delay_s=later,
                )
            return
        self.skip(slot, block)

    def skip(self, slot: Slot, block: BreakerBlock) -> None:
        """Done for this call without a request (it stays in the error as skipped)."""
        retry_in = block.retry_in_s
        dep_id = slot.dep.id
        slot.state = DONE
        why = f"skipped without a request: {block.describe()}"
        if slot.tries == 0:
            self.call.skips.append(
                DeploymentSkippedError(
                    why,
                    deployment=dep_id,
                    code="quota_scope_open" if block.scope else "breaker_open",
                    retry_after=retry_in,
                )
            )
        self.call.emit("breaker_open", dep_id, message=why, delay_s=retry_in)

    # --- budget ------------------------------------------------------------------------

    def check_budget(self, slot: Slot, *, hedge: bool = False) -> bool:
        """Whether an attempt on ``slot`` fits the budget; raises unless ``hedge``."""
        call = self.call
        budget = call.budget
        if budget.max_attempts is not None and call.attempts >= budget.max_attempts:
            if hedge:
                return False
            raise budget_error(
                call,
                "attempts",
                f"all {budget.max_attempts} attempts were used; next was {slot.dep.id}",
            )
        if budget.max_cost_usd is not None:
            expected = getattr(slot.cand, "expected_cost_usd", 0.0) or 0.0
            # Written so that a NaN cost is refused: NaN > cap would be False.
            if not call.spent + expected <= budget.max_cost_usd:
                if hedge:
                    return False
                raise budget_error(
                    call,
                    "cost",
                    f"${call.spent:.6f} spent and the next attempt ({slot.dep.id}) is expected "
                    f"to cost ${expected:.6f}, over the ${budget.max_cost_usd:.6f} cap",
                )
        return True

    # --- the next slot -------------------------------------------------------------------

    async def next_slot(self) -> Slot:
        """The next candidate to send a request to (sleeping for backoff if needed)."""
        try:
            return await self._next_slot()
        except Exception:
            # Every way out of a call awaits at least once: a call that fails without a
            # request (every breaker open) must not starve the event loop when a caller
            # retries it in a loop.
            await asyncio.sleep(0)
            raise

    async def _next_slot(self) -> Slot:
        call = self.call
        loop = call.loop
        while True:
            now = loop.time()
            slot, ready_at = self.select(now)
            if slot is None:
                raise exhausted(call)
            self.check_budget(slot)
            wait = ready_at - now
            deadline = call.deadline
            parked = slot.state == PARKED
            if parked:
                since = self.parked_since
                if since is None:
                    since = self.parked_since = now
                limit = since + self.breakers.settings.last_resort_wait_s
                if deadline is not None:
                    limit = min(limit, deadline)
                if ready_at > limit:
                    # Nothing can be sent here in time: skipped, with the breaker's reason.
                    assert slot.block is not None
                    self.skip(slot, slot.block)
                    continue
            if deadline is not None and max(now, ready_at) >= deadline:
                if wait > 0:
                    detail = (
                        f"the next try ({slot.dep.id}) is due in {wait:.2f}s, after the "
                        f"{call.budget.deadline_s}s deadline"
                    )
                else:
                    detail = f"the {call.budget.deadline_s}s deadline passed"
                raise budget_error(call, "deadline", detail)
            if wait > 0:
                await asyncio.sleep(wait)
            if not self.admit(slot, last_resort=parked):
                continue
            failed = self.last_failed
            if failed is not None:
                self.last_failed = None
                if failed is slot:
                    call.emit("retry", slot.dep.id, delay_s=max(0.0, wait))
                else:
                    call.emit("failover", failed.dep.id, to=slot.dep.id, delay_s=max(0.0, wait))
            return slot

    # --- one failure ---------------------------------------------------------------------

    def on_error(self, slot: Slot, error: ProviderError) -> None:
        """Apply one failed attempt to the breakers and this call's plan; raises if fatal."""
        call = self.call
        call.errors.append(error)
        dep = slot.dep
        kind = error.kind
        call.emit("attempt_failed", dep.id, error_kind=kind, message=error.message)
        for name in self._tell_breakers(slot, error):
            call.emit(
                "breaker_open",
                dep.id,
                error_kind=kind,
                message=f"{name} opened or held by this failure",
            )
        self.last_failed = slot
        slot.state = DONE
        if kind == "retry_here":
            retry = self.retry
            retry_after = error.retry_after
            beyond = retry_after is not None and retry_after > retry.retry_after_cap_s
            now = call.loop.time()
            wait = retry_after if retry_after is not None else retry.backoff(slot.tries)
            if not beyond and slot.tries <= retry.max_retries:
                slot.state = WAIT
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

    def failed_late(self, slot: Slot, error: ProviderError) -> None:
        """A failure that lost a race to an answer: kept in the errors and the breakers only."""
        self.call.errors.append(error)
        self._tell_breakers(slot, error)

    def _tell_breakers(self, slot: Slot, error: ProviderError) -> list[str]:
        """Hand the breakers the failed attempt's verdict; the names of those it opened."""
        if getattr(error, "host_answered", False):
            # The host answered (a reply that breaks the schema): it is up, not failing.
            self.breakers.record_success(slot.dep, slot.admission)
            return []
        return self.breakers.record_failure(slot.dep, error, slot.admission)


def _admitted(slot: Slot, admission: BreakerAdmission) -> None:
    slot.admission = admission
    slot.gate = admission.state
    slot.block = None


def _resume_rank(dep: Deployment, broken: Deployment) -> int:
    if dep.family == broken.family:
        return 0 if dep.region != broken.region else 1
    return 2

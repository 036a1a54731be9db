"""Hedging: race a slow attempt against one in another region; the first good answer wins.

When the running attempt has not answered after the hedge delay (``HedgeSettings``:
fixed, or the deployment's measured p95 latency), the next fresh candidate in a region
none of the racers is in starts too (budget and breakers permitting, up to
``max_hedges``, one more delay apart). A failed racer goes through the scheduler's
policy while the others run on; the losers of a race are cancelled and recorded
``cancelled`` with ``hedged=True``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.resilience.attempts import complete
from hybridstack.resilience.call import FRESH, Call, Skipped, Slot
from hybridstack.resilience.scheduling import Scheduler
from hybridstack.types import ChatResponse

__all__ = ["Run", "run_hedged"]


class Run:
    """One launched attempt in a hedge race (its ``hedged`` flag may flip while it runs)."""

    __slots__ = ("hedged", "order", "slot")

    def __init__(self, slot: Slot, order: int) -> None:
        self.slot = slot
        self.order = order
        self.hedged = False


def _hedge_delay(call: Call, dep: Deployment) -> float:
    hedge = call.ex.hedge
    if hedge.delay_s is not None:
        return hedge.delay_s
    latency = call.ex.latency
    p95 = latency.p95(dep.id) if latency is not None else None
    if p95 is None:
        return hedge.fallback_delay_s
    return max(hedge.min_delay_s, p95)


def _hedge_target(call: Call, sched: Scheduler, running: list[Slot]) -> Slot | None:
    """The fresh candidate to race the running ones with (admitted), or None."""
    regions = {s.dep.region for s in running}
    now = call.loop.time()
    for slot in call.slots:
        if slot.state != FRESH or not sched.usable(slot):
            continue
        if slot.dep.region in regions or sched.held(slot, now):
            continue
        if not sched.check_budget(slot, hedge=True):
            return None
        if sched.admit(slot):
            return slot
    return None


async def run_hedged(call: Call, sched: Scheduler) -> ChatResponse:
    """Run the call with hedging: the first good answer of a race, priced for the call."""
    loop = call.loop
    inflight: dict[asyncio.Task[ChatResponse], Run] = {}
    hedges_left = call.ex.hedge.max_hedges
    launched = 0
    primary: Run | None = None
    primary_at = hedge_at = 0.0
    try:
        while True:
            if not inflight:
                slot = await sched.next_slot()
                primary = Run(slot, launched)
                launched += 1
                inflight[loop.create_task(complete(call, slot, primary))] = primary
                primary_at = loop.time()
                hedge_at = primary_at + _hedge_delay(call, slot.dep)
            timeout = max(0.0, hedge_at - loop.time()) if hedges_left > 0 else None
            done, _ = await asyncio.wait(
                inflight, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                hedges_left -= 1
                assert primary is not None
                # A further hedge (max_hedges > 1) waits one more delay.
                hedge_at = loop.time() + _hedge_delay(call, primary.slot.dep)
                target = _hedge_target(call, sched, [r.slot for r in inflight.values()])
                if target is not None:
                    run = Run(target, launched)
                    launched += 1
                    run.hedged = True
                    for other in inflight.values():
                        other.hedged = True
                    inflight[loop.create_task(complete(call, target, run))] = run
                    call.emit(
                        "hedge",
                        primary.slot.dep.id,
                        to=target.dep.id,
                        delay_s=loop.time() - primary_at,
                    )
                continue
            winner: tuple[Slot, ChatResponse] | None = None
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
                            sched.on_error(run.slot, exc)
                        except ProviderError as fatal:
                            failure = fatal
                    else:
                        sched.failed_late(run.slot, exc)
                elif not isinstance(exc, Skipped) and failure is None:
                    failure = exc
            if winner is not None:
                await _cancel_all(inflight)
                return call.succeeded(*winner)
            if failure is not None:
                raise failure
    finally:
        if inflight:
            await _cancel_all(inflight)


async def _cancel_all(inflight: dict[asyncio.Task[Any], Run]) -> None:
    tasks = list(inflight)
    inflight.clear()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

"""One attempt's set-up and the non-streamed attempt itself.

:func:`provider_for` makes the slot's provider ready before the attempt counts (an SDK
import is never an attempt); :func:`request_for` gives the request to send there
(redacted, once per deployment, when it leaves the data's home jurisdiction);
:func:`complete` sends one non-streamed request under the call's deadline and records it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ConfigurationError, ProviderError, RetryableError
from hybridstack.plan import Candidate, Plan
from hybridstack.resilience.call import DONE, Call, DeadlineHit, Skipped, Slot
from hybridstack.resilience.output import check_output
from hybridstack.resilience.recording import AttemptLog
from hybridstack.resilience.reporting import DeploymentSkippedError, budget_error
from hybridstack.types import ChatRequest, ChatResponse

if TYPE_CHECKING:
    from hybridstack.resilience.hedging import Run

__all__ = ["complete", "provider_for", "request_for"]


async def provider_for(call: Call, slot: Slot) -> Any:
    """The slot's provider, made ready (SDK imported, client built) off the event loop.

    Runs before the attempt is counted or its deadline context entered: time spent
    importing an SDK is never an attempt, let alone a provider timeout.
    """
    ex = call.ex
    pool = ex.providers
    provider = pool.ready(slot.dep)
    if provider is not None:
        return provider
    try:
        if call.deadline is None:
            provider = await pool.aget(slot.dep)
        else:
            # The import goes on in its thread if the deadline cuts this wait short.
            async with asyncio.timeout_at(call.deadline):
                provider = await pool.aget(slot.dep)
    except TimeoutError:
        provider = None  # the deadline passed while loading: handled below
    except ConfigurationError as exc:
        # A deployment that cannot be built (no key …) is skipped, never sent.
        ex.breakers.release(slot.dep, slot.admission)
        slot.state = DONE
        why = f"skipped without a request: {exc}"
        call.skips.append(DeploymentSkippedError(why, deployment=slot.dep.id, code="configuration"))
        call.emit("skipped", slot.dep.id, message=why)
        raise Skipped from exc
    except BaseException:
        ex.breakers.release(slot.dep, slot.admission)
        raise
    if provider is None or call.past_deadline():
        ex.breakers.release(slot.dep, slot.admission)
        raise budget_error(
            call,
            "deadline",
            f"the {call.budget.deadline_s}s deadline passed while the {slot.dep.protocol} "
            f"SDK for {slot.dep.id} was loading, before any request was sent "
            "(`await stack.warm_up()` at start-up loads it ahead)",
        )
    return provider


def request_for(call: Call, slot: Slot) -> tuple[ChatRequest, dict[str, int] | None]:
    """The request to send to ``slot`` and the redaction counts to record with it.

    The redactor runs only for attempts that leave the data's home jurisdiction.
    """
    redact = call.redact
    if redact is None:
        return call.request, None
    dep = slot.dep
    if not _leaves_home(slot.cand, dep, call.plan, call.request):
        return call.request, None
    cache = call.redacted
    if cache is None:
        cache = call.redacted = {}
    hit = cache.get(dep.id)
    if hit is None:
        request, counts = redact(call.request, dep)
        merged = dict(call.redactions)
        for kind, count in counts.items():
            merged[kind] = merged.get(kind, 0) + count
        hit = cache[dep.id] = (request, merged)
    return hit


async def complete(call: Call, slot: Slot, run: Run | None = None) -> ChatResponse:
    """Send one non-streamed request; records it; returns the reply or raises its error."""
    provider = await provider_for(call, slot)
    request, redactions = request_for(call, slot)
    log = AttemptLog(call, slot, request, redactions, run=run)
    dep = slot.dep
    headers = log.headers()
    deadline = call.deadline
    try:
        if deadline is None:
            response: ChatResponse = await provider.complete(request, extra_headers=headers)
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    response = await provider.complete(request, extra_headers=headers)
            except TimeoutError as exc:
                if call.past_deadline():
                    raise DeadlineHit from None
                raise RetryableError(
                    f"the attempt timed out: {exc}", deployment=dep.id, code="timeout"
                ) from exc
        if request.response_schema is not None:
            log.usage = response.usage  # a non-conforming reply was paid for all the same
            check_output(request, response, dep)
    except ProviderError as error:
        log.failed(error)
        raise
    except DeadlineHit:
        log.cancelled(TimeoutError("the call's deadline passed during this attempt"))
        raise budget_error(
            call,
            "deadline",
            f"the {call.budget.deadline_s}s deadline passed during an attempt on {dep.id}",
        ) from None
    except asyncio.CancelledError:
        log.cancelled()
        raise
    except Exception as exc:
        # Not a taxonomy error: an adapter bug. Record it, then let it surface.
        log.crashed(exc)
        raise
    log.ok(response.usage, response.request_id)
    return response


def _leaves_home(cand: Candidate, dep: Deployment, plan: Plan, request: ChatRequest) -> bool:
    """Whether an attempt on ``dep`` takes the data out of its home jurisdiction."""
    leaves = getattr(cand, "leaves_home", None)
    if leaves is not None:
        return bool(leaves)
    home = getattr(plan, "home_jurisdiction", None) or request.metadata.get("home_jurisdiction")
    return dep.jurisdiction != (home or "LOCAL").upper()

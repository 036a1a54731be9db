"""Attempt recording: the one place that numbers, prices and records a network attempt.

:class:`AttemptLog` is opened when a request is about to be sent (it counts the attempt
and the slot's try) and closed exactly once, whatever the way out — ``ok``, a taxonomy
error, ``cancelled`` (hedge loser, deadline, caller gone) or ``fatal`` (an adapter bug) —
by :meth:`AttemptLog.ok`, :meth:`AttemptLog.failed`, :meth:`AttemptLog.cancelled` or
:meth:`AttemptLog.crashed`. Closing prices the usage known at that point with
:func:`hybridstack.ledger.pricing.price_usage` (the catalog price at the attempt's start),
adds it to the call's spend, hands the breakers their verdict and writes one
:class:`~hybridstack.types.Attempt` to the ledger. Error text is scrubbed here once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING

from hybridstack._secrets import scrub
from hybridstack.errors import ProviderError
from hybridstack.ledger.pricing import price_usage
from hybridstack.resilience.call import Call, Slot
from hybridstack.types import Attempt, ChatRequest, Usage

if TYPE_CHECKING:
    from hybridstack.resilience.hedging import Run

__all__ = ["AttemptLog"]

logger = logging.getLogger("hybridstack.resilience")
_DEBUG = logging.DEBUG

_ZERO_USAGE = Usage()
_ATTEMPT_TEMPLATE = Attempt(
    call_id="-", deployment="-", family="-", started_at=datetime(2000, 1, 1, tzinfo=UTC)
)


class AttemptLog:
    """One network attempt of a call, from just before its request until it is recorded."""

    __slots__ = (
        "call",
        "index",
        "redactions",
        "request",
        "retry_index",
        "run",
        "slot",
        "started_at",
        "streamed",
        "t0",
        "ttft_s",
        "usage",
        "usage_estimated",
    )

    def __init__(
        self,
        call: Call,
        slot: Slot,
        request: ChatRequest,
        redactions: dict[str, int] | None,
        *,
        streamed: bool = False,
        run: Run | None = None,
    ) -> None:
        self.call = call
        self.slot = slot
        self.index = index = call.attempts
        call.attempts = index + 1
        self.retry_index = retry_index = slot.tries
        slot.tries = retry_index + 1
        #: The request as sent (redacted when it leaves home) and the counts to record.
        self.request = request
        self.redactions = redactions
        self.streamed = streamed
        #: The hedge race entry, whose ``hedged`` flag may flip while this attempt runs.
        self.run = run
        #: Usage seen so far (a stream's usage frame), and the time to the first token.
        self.usage: Usage | None = None
        #: True when ``usage`` is an estimate (the provider reported none).
        self.usage_estimated = False
        self.ttft_s: float | None = None
        self.started_at = datetime.now(UTC)
        self.t0 = perf_counter()

    def headers(self) -> dict[str, str]:
        """The headers of this attempt's request: the caller's, then hybridstack's own."""
        call_id = self.call.call_id
        ours = {"x-hybridstack-call": call_id, "x-hybridstack-attempt": f"{call_id}-{self.index}"}
        extra = self.call.extra_headers
        return {**extra, **ours} if extra else ours

    def elapsed(self) -> float:
        return perf_counter() - self.t0

    # --- the four ways out -------------------------------------------------------------

    def ok(self, usage: Usage, request_id: str | None) -> float:
        """The attempt answered: success to the breakers and the latency tracker."""
        latency = self.elapsed()
        ex = self.call.ex
        ex.breakers.record_success(self.slot.dep, self.slot.admission)
        self._record(latency, "ok", usage, None, request_id)
        if ex.latency is not None:
            ex.latency.observe(self.slot.dep.id, latency)
        return latency

    def failed(self, error: ProviderError) -> None:
        """The attempt failed with a taxonomy error (the scheduler tells the breakers)."""
        self._record(self.elapsed(), error.kind, self.usage, error, None)

    def cancelled(self, error: BaseException | None = None) -> None:
        """The attempt was cut off without a verdict: its breaker place is freed."""
        self._record(self.elapsed(), "cancelled", self.usage, error, None)
        self.call.ex.breakers.release(self.slot.dep, self.slot.admission)

    def crashed(self, error: BaseException) -> None:
        """Not a taxonomy error (an adapter bug): recorded as fatal, then left to surface."""
        self._record(self.elapsed(), "fatal", self.usage, error, None)
        self.call.ex.breakers.release(self.slot.dep, self.slot.admission)

    # --- the record ----------------------------------------------------------------------

    def _record(
        self,
        latency_s: float,
        outcome: str,
        usage: Usage | None,
        error: BaseException | None,
        request_id: str | None,
    ) -> None:
        call = self.call
        dep = self.slot.dep
        if usage is None:
            usage = _ZERO_USAGE
            cost = 0.0
        else:
            cost = price_usage(dep.price, usage, at=self.started_at)
            call.spent += cost
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
        run = self.run
        # Copying a validated template with every field replaced skips validation; it is
        # several times cheaper than ``Attempt.model_construct`` under pydantic 2.1x.
        attempt = _ATTEMPT_TEMPLATE.model_copy(
            update=dict(
                call_id=call.call_id,
                run_id=call.run_id,
                attempt_index=self.index,
                retry_index=self.retry_index,
                deployment=dep.id,
                family=dep.family,
                model=dep.model,
                protocol=dep.protocol,
                region=dep.region,
                jurisdiction=dep.jurisdiction,
                quota_scope=dep.quota_scope,
                started_at=self.started_at,
                ttft_s=self.ttft_s,
                latency_s=latency_s,
                usage=usage,
                usage_estimated=self.usage_estimated,
                cost_usd=cost,
                outcome=outcome,
                error_type=error_type,
                error_message=error_message,
                status=status,
                provider_code=code,
                request_id=request_id,
                retry_after_s=retry_after,
                breaker_state=self.slot.gate,
                hedged=run is not None and run.hedged,
                streamed=self.streamed,
                skill=call.skill,
                data_class=call.data_class,
                reasons=tuple(getattr(self.slot.cand, "reasons", ()) or ()),
                redactions=self.redactions if self.redactions is not None else call.redactions,
            )
        )
        if logger.isEnabledFor(_DEBUG):
            logger.debug(
                "attempt %s-%d on %s: %s in %.3fs (cost $%.6f)",
                call.call_id,
                self.index,
                dep.id,
                outcome,
                latency_s,
                cost,
            )
        try:
            # Built here for the ledger alone: hand it over without another copy.
            call.ex.ledger.record(attempt, owned=True)
        except Exception:
            logger.exception("the ledger failed to record attempt %s-%d", call.call_id, self.index)

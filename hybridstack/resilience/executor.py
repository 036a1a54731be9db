"""The executor: run one plan for one request, the error taxonomy deciding every step.

:class:`Executor` holds what outlives a call (providers, ledger, breakers, settings)
and runs each call by composing the parts of :mod:`hybridstack.resilience`: scheduling
(:mod:`.scheduling`), attempts (:mod:`.attempts`, recorded by :mod:`.recording`),
hedging (:mod:`.hedging`), streaming (:mod:`.streaming`) and failure reporting
(:mod:`.reporting`). It is the *only* retry loop in hybridstack: the adapters' SDK
clients run with ``max_retries=0``. The policy in full is in ``docs/resilience.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.plan import Plan
from hybridstack.resilience.attempts import complete
from hybridstack.resilience.breaker import BreakerRegistry
from hybridstack.resilience.call import Call, Skipped
from hybridstack.resilience.events import EventKind, ExecutionEvent, Redactor
from hybridstack.resilience.hedging import run_hedged
from hybridstack.resilience.pool import ProviderPool
from hybridstack.resilience.reporting import DeploymentSkippedError
from hybridstack.resilience.scheduling import Scheduler
from hybridstack.resilience.settings import Budget, HedgeSettings, RetrySettings
from hybridstack.resilience.streaming import run_stream
from hybridstack.types import ChatRequest, ChatResponse, StreamEvent

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
        plan: Plan,
        request: ChatRequest,
        *,
        budget: Budget | None = None,
        call_id: str | None = None,
        run_id: str | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
        redactions: Mapping[str, int] | None = None,
        redact: Redactor | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatResponse:
        """Run ``plan`` for ``request``; the first good answer, priced for the whole call.

        Raises :class:`FatalError`, :class:`AllAttemptsFailedError`,
        :class:`BudgetExceededError` or :class:`NoRouteError` (an empty plan).
        ``redactions`` is recorded on every attempt as given; ``redact`` (a
        :data:`Redactor`, e.g. one wrapping :func:`hybridstack.routing.redact`) rewrites
        the request for attempts that leave the data's home jurisdiction, and its counts
        are recorded on those attempts. ``extra_headers`` go with every attempt's request
        (validated by the caller; hybridstack's ``x-hybridstack-*`` headers win).
        """
        call = Call(
            self, plan, request, budget, call_id, run_id, on_event, redactions, redact,
            extra_headers or request.extra_headers or None,
        )  # fmt: skip
        call.start()
        sched = Scheduler(call)
        hedge = self.hedge
        if hedge.enabled and hedge.max_hedges > 0:
            return await run_hedged(call, sched)
        while True:
            slot = await sched.next_slot()
            try:
                response = await complete(call, slot)
            except ProviderError as error:
                sched.on_error(slot, error)
                continue
            except Skipped:
                continue
            return call.succeeded(slot, response)

    def stream(
        self,
        plan: Plan,
        request: ChatRequest,
        *,
        budget: Budget | None = None,
        call_id: str | None = None,
        run_id: str | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
        redactions: Mapping[str, int] | None = None,
        redact: Redactor | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream ``plan``'s answer: an async iterator of stream events ending in a FinishEvent.

        Fails over invisibly before the first token; after it, see ``stream_failover``.
        """
        call = Call(
            self, plan, request, budget, call_id, run_id, on_event, redactions, redact,
            extra_headers or request.extra_headers or None,
        )  # fmt: skip
        return run_stream(call, Scheduler(call))

"""How a Stack call runs: its loose arguments become a request and a plan (the skill
classified when none is given), the executor runs the plan, and telemetry and the
no-provider explanation wrap the run.

:class:`StackCalls` is a base class of :class:`hybridstack.Stack`, whose public
``complete()``, ``stream()`` and ``route()`` are the way in; it owns none of the
attributes it declares and is not meant to be used on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from hybridstack import telemetry as _telemetry
from hybridstack._call_skill import SkillClassifierLike, skill_of, skill_of_async
from hybridstack._no_provider import explain_silence, nothing_answered, only_keyless
from hybridstack._sync import closing
from hybridstack.catalog import Catalog
from hybridstack.catalog.keys import KeyResolver
from hybridstack.catalog.refs import NAMED_LIST_FIELDS, unnamed_entry
from hybridstack.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    HybridStackError,
    InvalidRequestError,
)
from hybridstack.ledger import Ledger
from hybridstack.resilience import Budget, ExecutionEvent, Executor, Redactor
from hybridstack.routing import Plan, Policy, RouteConstraints, Router
from hybridstack.types import ChatRequest, ChatResponse, MessagesInput, StreamEvent

if TYPE_CHECKING:
    from hybridstack.telemetry import Telemetry
    from hybridstack.telemetry.otel import StackObserver

__all__ = ["StackCalls", "check_constraint_names"]

_call_counter = itertools.count(1)


def _new_call_id() -> str:
    # A short random prefix keeps ids unique across processes sharing one SQLite ledger.
    return f"c{_PROCESS_TAG}{next(_call_counter):06d}"


_PROCESS_TAG = uuid.uuid4().hex[:6]


def check_constraint_names(
    catalog: Catalog, constraints: RouteConstraints | None, where: str, error: type[Exception]
) -> None:
    """Refuse deny/allow entries that name nothing in the catalog (with did-you-mean)."""
    constraints = RouteConstraints.coerce(constraints)
    if constraints is None:
        return
    for field_name in NAMED_LIST_FIELDS:
        problem = unnamed_entry(catalog, field_name, getattr(constraints, field_name) or ())
        if problem is not None:
            raise error(f"{where}.{field_name}: {problem}")


class StackCalls:
    """The machinery behind a :class:`~hybridstack.Stack`'s calls."""

    # Set by Stack.__init__.
    catalog: Catalog
    router: Router
    executor: Executor
    ledger: Ledger
    budget: Budget
    run_id: str | None
    skill_classifier: SkillClassifierLike | None
    _classifier_is_async: bool
    _keys: KeyResolver
    _redactor: Redactor | None
    _telemetry: Telemetry | Literal[False] | None
    _observer: StackObserver | None
    # Stack.build_request (a staticmethod there).
    build_request: Callable[..., ChatRequest]

    def _prepare(
        self,
        messages: MessagesInput | ChatRequest,
        skill: str | None,
        data_class: str,
        model: str | None,
        policy: str | Policy | None,
        constraints: RouteConstraints | None,
        stream: bool,
        request_fields: Mapping[str, Any],
        *,
        route_key: str | None = None,
    ) -> tuple[ChatRequest, Plan]:
        # One path from loose arguments to (request, plan) for route, complete and stream.
        request = self.build_request(messages, **request_fields)
        if constraints is not None:
            check_constraint_names(self.catalog, constraints, "constraints", InvalidRequestError)
        plan = self.router.plan(
            request,
            skill=skill_of(self.skill_classifier, self._classifier_is_async, request, skill, model),
            data_class=data_class,
            model=model,
            policy=policy,
            constraints=constraints,
            stream=stream,
            route_key=route_key,
        )
        return request, plan

    async def _prepare_async(
        self,
        messages: MessagesInput | ChatRequest,
        skill: str | None,
        *rest: Any,
        route_key: str | None = None,
    ) -> tuple[ChatRequest, Plan]:
        """:meth:`_prepare` (same arguments) after awaiting an async skill classifier."""
        if skill is None and self._classifier_is_async and rest[1] is None:  # rest[1]: model
            request = self.build_request(messages, **rest[-1])  # rest[-1]: request_fields
            skill = await skill_of_async(
                self.skill_classifier, self._classifier_is_async, request, None
            )
            messages = request
        return self._prepare(messages, skill, *rest, route_key=route_key)

    async def _prepare_reported(
        self,
        settings: Telemetry | None,
        started: int,
        messages: MessagesInput | ChatRequest,
        skill: str | None,
        *rest: Any,
        route_key: str | None = None,
    ) -> tuple[ChatRequest, Plan]:
        """:meth:`_prepare_async` for complete() and an awaited stream(), a routing failure
        reported to telemetry (``settings``, the call ``started`` at that time)."""
        try:
            return await self._prepare_async(messages, skill, *rest, route_key=route_key)
        except Exception as error:
            if settings is not None and isinstance(error, HybridStackError):
                model = rest[1]  # as in _prepare_async
                self._observer_for().routing_failed(settings, started, error, model)
            # Every way out of a call awaits at least once, routing errors (NoRouteError)
            # too: a caller retrying a call that cannot route must not starve the loop.
            await asyncio.sleep(0)
            raise

    def _execution(
        self,
        budget: Budget | None,
        run_id: str | None,
        on_event: Callable[[ExecutionEvent], None] | None,
    ) -> dict[str, Any]:
        return {
            "budget": budget or self.budget,
            "call_id": _new_call_id(),
            "run_id": run_id or self.run_id,
            "on_event": on_event,
            "redact": self._redactor,
        }

    async def _execute(
        self, plan: Plan, request: ChatRequest, execution: dict[str, Any]
    ) -> ChatResponse:
        try:
            return await self.executor.execute(plan, request, **execution)
        except (AllAttemptsFailedError, BudgetExceededError) as error:
            nothing = nothing_answered(plan, error, self.catalog, self._keys)
            if nothing is None:
                raise
            raise nothing from error

    # --- telemetry -------------------------------------------------------------------

    def _telemetry_settings(self) -> Telemetry | None:
        """The telemetry in force for a call now; None (off, the default) costs a read."""
        setting = self._telemetry
        if setting is None:
            return _telemetry._default
        return setting or None  # False: off

    def _observer_for(self) -> StackObserver:
        observer = self._observer
        if observer is None:
            from hybridstack.telemetry.otel import StackObserver

            observer = self._observer = StackObserver(self.catalog, self.ledger)
        return observer

    def _stream_events(
        self,
        plan: Plan,
        request: ChatRequest,
        budget: Budget | None,
        run_id: str | None,
        on_event: Callable[[ExecutionEvent], None] | None,
        settings: Telemetry | None,
        model: str | None,
        started: int,
    ) -> AsyncIterator[StreamEvent]:
        execution = self._execution(budget, run_id, on_event)
        call = None
        if settings is not None:
            call = self._observer_for().call(
                settings, execution, request, plan, model=model, started_ns=started, stream=True
            )
        # Returned as is, not re-yielded: every extra generator layer costs per event.
        events = self.executor.stream(plan, request, **execution)
        if only_keyless(plan):
            # Only keyless (local) deployments: say so if none of them answers.
            events = explain_silence(events, plan, self.catalog, self._keys)
        # The telemetry layer is outermost: its span sees the error the caller sees.
        return events if call is None else call.stream(events)

    async def _stream_after_classifying(
        self,
        messages: MessagesInput | ChatRequest,
        data_class: str,
        policy: str | Policy | None,
        constraints: RouteConstraints | None,
        fields: Mapping[str, Any],
        budget: Budget | None,
        run_id: str | None,
        on_event: Callable[[ExecutionEvent], None] | None,
        route_key: str | None,
        settings: Telemetry | None = None,
        started: int = 0,
    ) -> AsyncIterator[StreamEvent]:
        # stream() cannot await; this generator awaits the classifier on first iteration.
        request, plan = await self._prepare_reported(
            settings,
            started,
            messages,
            None,
            data_class,
            None,
            policy,
            constraints,
            True,
            fields,
            route_key=route_key,
        )
        events = self._stream_events(
            plan, request, budget, run_id, on_event, settings, None, started
        )
        async with closing(events):
            async for event in events:
                yield event

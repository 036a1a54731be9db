"""The facade a user imports: one object that wires catalog, routing, resilience and ledger.

``Stack`` turns ``await stack.complete(messages, skill=..., data_class=...)`` into a plan
(router), runs it (executor: retries, breakers, fail-over, hedging, budget) and records
every attempt (ledger). Building a Stack validates the sovereignty rules up front, so a
misconfigured route fails at start-up rather than leaking data at call time.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from hybridstack import telemetry as _telemetry
from hybridstack._call_skill import SkillClassifierLike, is_async_callable
from hybridstack._requests import build_request, request_fields
from hybridstack._stack_calls import StackCalls, check_constraint_names
from hybridstack._stack_lifecycle import StackLifecycle
from hybridstack.catalog import Catalog, Deployment
from hybridstack.catalog.keys import KeyResolver
from hybridstack.errors import ConfigurationError, HybridStackError
from hybridstack.ledger import Ledger, MemoryLedger, open_ledger
from hybridstack.resilience import (
    BreakerRegistry,
    BreakerSettings,
    Budget,
    ExecutionEvent,
    Executor,
    HedgeSettings,
    LatencyTracker,
    ProviderPool,
    RetrySettings,
)
from hybridstack.resilience.health import HealthStore
from hybridstack.resilience.health_stores import health_store_from
from hybridstack.routing import (
    DataClassRules,
    Plan,
    Policy,
    RouteConstraints,
    Router,
    SkillTable,
    redact,
)
from hybridstack.types import ChatRequest, ChatResponse, MessagesInput, StreamEvent, Tool

if TYPE_CHECKING:
    from hybridstack.providers import Provider
    from hybridstack.telemetry import Telemetry
    from hybridstack.telemetry.otel import StackObserver

__all__ = ["SkillClassifierLike", "Stack"]


def _redact_for_deployment(
    request: ChatRequest, deployment: Deployment
) -> tuple[ChatRequest, dict[str, Any]]:
    return redact(request)


class Stack(StackCalls, StackLifecycle):
    """Routing + resilience + ledger behind one call.

    Args:
        catalog: families and deployments (default: the bundled catalog).
        skill_table: skill -> ranked families (dict or :class:`SkillTable`).
        data_classes: data class -> allowed jurisdictions (dict or :class:`DataClassRules`).
        policy: ``"weighted"`` (default), ``"cheapest"``, ``"fastest"``, ``"diversified"``
            or a :class:`Policy`.
        seed: seed of the weighted policy's RNG; the same seed replays the same routes.
        retry, breakers, budget, hedge: resilience settings (explicit defaults).
        stream_failover: after a stream's first token, ``"raise"`` (keep the partial
            text in the error) or ``"resume"`` (continue elsewhere behind a marker).
        ledger: where attempts are recorded (default: in memory): a :class:`Ledger`, or
            ``"memory"``, an SQLite file path or a ``postgresql://`` URL, which the stack
            opens and closes with :meth:`aclose`.
        redact_personal_data: redact e-mails, phones, cards and ID numbers in requests
            that leave the data's home jurisdiction.
        api_keys: keys by environment-variable name or deployment id, instead of the
            environment. Held privately; never printed.
        constraints: route constraints applied to every call (allow/deny lists, price).
        routes: pinned routes: ``{"personal": ["qwen3-30b-a3b@vllm-local"]}`` or
            ``{"code/personal": [...]}`` (checked against the sovereignty rules at build).
        run_id: tag every call's ledger records with this run id by default.
        skill_classifier: ``text -> skill`` used when a call gives no ``skill``
            (default: the deterministic, offline :func:`hybridstack.classify_skill`).
            It may return a skill name or a ``SkillGuess``, and may be async, such as the
            cascade ``LLMSkillClassifier`` (offline first, a model only when unsure):
            ``complete()`` and ``stream()`` await it. ``route()`` never calls a model, so
            with an async classifier it uses the classifier's ``offline_guess`` (pass
            ``skill=`` to pin the skill everywhere).
        health_store: where breakers, Retry-After holds, latency and the diversified
            window live: None (this process only, the default), a Redis URL
            (``"redis://127.0.0.1:6379/0"``, shared by every Stack pointed at it; needs
            ``hybridstack[redis]``) or a ``HealthStore``. A store built here from a URL
            is closed by :meth:`aclose`; one you pass in stays yours to close.
        telemetry: OpenTelemetry GenAI spans and metrics for every call (see
            docs/observability.md): ``None`` (default) follows
            :func:`hybridstack.instrument`, off until it is called; ``True`` on, with the
            global providers; ``False`` off; or a :class:`hybridstack.Telemetry`.
    """

    def __init__(
        self,
        catalog: Catalog | None = None,
        *,
        skill_table: SkillTable | Mapping[str, Sequence[str]] | None = None,
        data_classes: DataClassRules | Mapping[str, Sequence[str]] | None = None,
        policy: str | Policy = "weighted",
        seed: int | None = None,
        retry: RetrySettings | None = None,
        breakers: BreakerSettings | None = None,
        budget: Budget | None = None,
        hedge: HedgeSettings | None = None,
        stream_failover: str = "raise",
        ledger: Ledger | str | os.PathLike[str] | None = None,
        redact_personal_data: bool = False,
        api_keys: Mapping[str, str] | None = None,
        constraints: RouteConstraints | None = None,
        routes: Mapping[str | tuple[str, str], Sequence[str]] | None = None,
        run_id: str | None = None,
        skill_classifier: SkillClassifierLike | None = None,
        health_store: HealthStore | str | None = None,
        telemetry: Telemetry | bool | None = None,
    ) -> None:
        if stream_failover not in ("raise", "resume"):
            raise ValueError(
                f"stream_failover must be 'raise' or 'resume', not {stream_failover!r}"
            )
        after_first_token: Literal["raise", "resume"] = (
            "resume" if stream_failover == "resume" else "raise"
        )
        self.catalog = catalog if catalog is not None else Catalog.default()
        self._keys = KeyResolver(api_keys)  # names in its repr, values never
        #: The ledger the stack opened from a path or URL (closed by aclose), else None.
        self._own_ledger: Ledger | None = None
        if isinstance(ledger, str | os.PathLike):
            ledger = self._own_ledger = open_ledger(ledger)
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self._owns_store = not isinstance(health_store, HealthStore)
        self.health_store = health_store_from(health_store)
        self.latency = LatencyTracker(store=self.health_store)
        self.breakers = BreakerRegistry(breakers or BreakerSettings(), store=self.health_store)
        self.budget = budget or Budget()
        self.redact_personal_data = redact_personal_data
        self.run_id = run_id
        if skill_classifier is not None and not callable(skill_classifier):
            raise ConfigurationError(
                "skill_classifier must be a callable taking the prompt text and returning a "
                f"skill name or a SkillGuess, got {type(skill_classifier).__name__}"
            )
        self.skill_classifier = skill_classifier
        self._telemetry = _telemetry.coerce(telemetry)
        self._observer: StackObserver | None = None
        self._classifier_is_async = is_async_callable(skill_classifier)
        self.router = Router(
            self.catalog,
            skill_table=skill_table,
            data_classes=data_classes,
            policy=policy,
            seed=seed,
            constraints=constraints,
            routes=routes,
            health=self.breakers.health,
            latency=self.latency,
            key_available=self._keys.available,
            share_store=self.health_store,
        )
        # Fail closed at build time: a route that could leak raises SovereigntyError here.
        self.router.validate()
        check_constraint_names(self.catalog, constraints, "constraints", ConfigurationError)
        # The executor asks the redactor only for attempts that leave the data's home
        # jurisdiction (Candidate.leaves_home); routing owns the patterns.
        self._redactor = _redact_for_deployment if redact_personal_data else None
        self._pool = ProviderPool(self._make_provider)
        self.executor = Executor(
            providers=self._pool,
            ledger=self.ledger,
            catalog=self.catalog,
            retry=retry or RetrySettings(),
            breakers=self.breakers,
            hedge=hedge or HedgeSettings(),
            stream_failover=after_first_token,
            latency=self.latency,
            on_success=self.router.record_choice,
        )

    def __repr__(self) -> str:
        return (
            f"Stack(deployments={len(self.catalog)}, policy={self.router.policy!s}, "
            f"ledger={type(self.ledger).__name__})"
        )

    # --- providers -------------------------------------------------------------------

    def _make_provider(self, deployment: Deployment) -> Provider:
        from hybridstack.providers import create_provider

        # Adapters see only the deployment; give it the family's features when the
        # deployment does not override them (e.g. json_object-only hosts).
        if deployment.features is None:
            deployment = deployment.model_copy(
                update={"features": self.catalog.features(deployment)}
            )
        return create_provider(deployment, keys=self._keys)

    # --- requests --------------------------------------------------------------------

    #: A :class:`ChatRequest` from the loose arguments people pass; raises
    #: :class:`~hybridstack.errors.InvalidRequestError` naming the field, the bad value
    #: and what is allowed (:func:`hybridstack._requests.build_request`).
    build_request = staticmethod(build_request)

    def route(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        policy: str | Policy | None = None,
        constraints: RouteConstraints | None = None,
        stream: bool = False,
        route_key: str | None = None,
        **request_fields: Any,
    ) -> Plan:
        """The plan for a request, without calling any model (explains the decision).

        With the ``route_key`` the call will use, it is the plan that call executes.
        """
        _, plan = self._prepare(
            messages,
            skill,
            data_class,
            model,
            policy,
            constraints,
            stream,
            request_fields,
            route_key=route_key,
        )
        return plan

    def allowed_jurisdictions(self, data_class: str) -> frozenset[str] | None:
        """Where data of ``data_class`` may go (None: anywhere); an unknown class raises
        :class:`~hybridstack.routing.UnknownDataClassError`."""
        return self.router.data_classes.allowed(data_class)

    def known_skills(self) -> tuple[str, ...]:
        """The skills a call or a plan may name: the skill table's, then the catalog's."""
        return self.router.skill_table.known_skills(self.catalog)

    async def complete(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_schema: Mapping[str, Any] | type | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        policy: str | Policy | None = None,
        constraints: RouteConstraints | None = None,
        budget: Budget | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
        route_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatResponse:
        """Route, run with fail-over, record, and return the first good answer.

        ``route_key`` is the call's stable identity (see :meth:`Router.plan`): the same
        key gets the same weighted order, so ``route(..., route_key=k)`` shows this plan.
        ``extra_headers`` (e.g. ``{"x-trace-id": "..."}``) go with every attempt's HTTP
        request, over all three wire protocols; credentials and framing headers are
        refused (:class:`InvalidRequestError`).
        """
        fields = request_fields(locals())  # tools, tool_choice, ... extra_headers
        settings = self._telemetry_settings()
        started = time.time_ns() if settings is not None else 0
        request, plan = await self._prepare_reported(
            settings,
            started,
            messages,
            skill,
            data_class,
            model,
            policy,
            constraints,
            False,
            fields,
            route_key=route_key,
        )
        execution = self._execution(budget, run_id, on_event)
        if settings is None:
            return await self._execute(plan, request, execution)
        call = self._observer_for().call(
            settings, execution, request, plan, model=model, started_ns=started, stream=False
        )
        return await call.run(self._execute(plan, request, execution))

    def stream(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_schema: Mapping[str, Any] | type | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        policy: str | Policy | None = None,
        constraints: RouteConstraints | None = None,
        budget: Budget | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_event: Callable[[ExecutionEvent], None] | None = None,
        route_key: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream the reply: ``async for event in stack.stream(...)``.

        Fails over invisibly before the first token; after it, see ``stream_failover``.
        The plan is made when this is called (a routing error raises here); the request
        goes out when iteration starts. A caller that stops early should close the
        iterator (``contextlib.aclosing``) to have the attempt recorded as cancelled at
        once rather than when it is garbage-collected. With an async ``skill_classifier``
        and no ``skill=``, the classifier is awaited when iteration starts, so a routing
        error raises there instead.
        """
        fields = request_fields(locals())  # tools, tool_choice, ... extra_headers
        settings = self._telemetry_settings()
        started = time.time_ns() if settings is not None else 0
        if skill is None and model is None and self._classifier_is_async:
            return self._stream_after_classifying(
                messages,
                data_class,
                policy,
                constraints,
                fields,
                budget,
                run_id,
                on_event,
                route_key,
                settings,
                started,
            )
        try:
            request, plan = self._prepare(
                messages,
                skill,
                data_class,
                model,
                policy,
                constraints,
                True,
                fields,
                route_key=route_key,
            )
        except HybridStackError as error:
            if settings is not None:
                self._observer_for().routing_failed(settings, started, error, model)
            raise
        return self._stream_events(
            plan, request, budget, run_id, on_event, settings, model, started
        )

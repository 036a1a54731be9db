"""The facade a user imports: one object that wires catalog, routing, resilience and ledger.

``Stack`` turns ``await stack.complete(messages, skill=..., data_class=...)`` into a plan
(router), runs it (executor: retries, breakers, fail-over, hedging, budget) and records
every attempt (ledger). Building a Stack validates the sovereignty rules up front, so a
misconfigured route fails at start-up rather than leaking data at call time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import itertools
import os
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import ValidationError

from hybridstack import telemetry as _telemetry
from hybridstack._secrets import scrub
from hybridstack._sync import iterate_sync, run_sync
from hybridstack._validation import first_problem
from hybridstack.catalog import Catalog, Deployment
from hybridstack.catalog.keys import KeyResolver, needs_key
from hybridstack.catalog.refs import NAMED_LIST_FIELDS, unnamed_entry
from hybridstack.errors import (
    AllAttemptsFailedError,
    BudgetExceededError,
    ConfigurationError,
    HybridStackError,
    InvalidRequestError,
    NoProviderError,
    ProviderError,
)
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
from hybridstack.types import (
    MESSAGES_SHAPES,
    ChatRequest,
    ChatResponse,
    MessagesInput,
    StreamEvent,
    Tool,
    check_extra_headers,
)

if TYPE_CHECKING:
    from hybridstack.providers import Provider
    from hybridstack.telemetry import Telemetry
    from hybridstack.telemetry.otel import StackObserver

__all__ = ["SkillClassifierLike", "Stack"]

#: ``text -> skill``: a skill name, or anything with a ``.skill`` str (``SkillGuess``,
#: ``Classification``), returned directly or awaited (``LLMSkillClassifier``).
SkillClassifierLike: TypeAlias = Callable[[str], Any | Awaitable[Any]]

_call_counter = itertools.count(1)


def _new_call_id() -> str:
    # A short random prefix keeps ids unique across processes sharing one SQLite ledger.
    return f"c{_PROCESS_TAG}{next(_call_counter):06d}"


_PROCESS_TAG = uuid.uuid4().hex[:6]

#: What a request field looks like, for errors about a value of the wrong shape.
_REQUEST_SHAPES = {
    "messages": MESSAGES_SHAPES,
    "messages[]": "a Message or a dict such as {'role': 'user', 'content': 'Hi'}",
    "messages.role": "one of 'system', 'user', 'assistant' or 'tool'",
    "tools": "a Tool or a dict such as {'name': 'get_weather', 'parameters': {...}}",
    "tools.name": "letters, digits, '_' or '-', at most 64 characters",
    "metadata": "a dict of text to text, e.g. {'ticket': 'T-1'}",
    "extra_headers": "a dict of header name to text, e.g. {'x-trace-id': 'abc'}",
    "response_schema": "a JSON schema dict or a pydantic model class",
}

#: The module of the offline skill classifier used when a Stack is given none.
_DEFAULT_CLASSIFIER = "hybridstack.routing.skills.classifier"


def _check_constraint_names(
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


def _only_keyless(plan: Plan) -> bool:
    """Every candidate needs no key: what a plan holds when no provider key is set."""
    return bool(plan.candidates) and all(c.deployment.api_key_env is None for c in plan.candidates)


def _did_not_answer(error: Exception) -> bool:
    """The attempt never reached a server (refused, unreachable, timed out), or a
    breaker skipped it after such failures."""
    if getattr(error, "skipped", False):
        return True
    return (
        isinstance(error, ProviderError)
        and error.kind == "retry_here"
        and error.code in ("connection_error", "timeout")
    )


def _redact_for_deployment(
    request: ChatRequest, deployment: Deployment
) -> tuple[ChatRequest, dict[str, Any]]:
    return redact(request)


class Stack:
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
        self._classifier_is_async = _is_async_callable(skill_classifier)
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
        _check_constraint_names(self.catalog, constraints, "constraints", ConfigurationError)
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

    @staticmethod
    def build_request(
        messages: MessagesInput | ChatRequest,
        *,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_schema: Mapping[str, Any] | type | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatRequest:
        """A :class:`ChatRequest` from the loose arguments people pass.

        Raises :class:`~hybridstack.errors.InvalidRequestError` naming the field, the bad
        value and what is allowed.
        """
        if isinstance(messages, ChatRequest):
            if not extra_headers:
                return messages
            try:
                headers = check_extra_headers(extra_headers)
            except ValueError as exc:
                refused = scrub(str(exc))
            else:
                return messages.model_copy(
                    update={"extra_headers": {**messages.extra_headers, **headers}}
                )
            # Raised outside the except block: the ValueError, which quotes the bad
            # value unscrubbed, must not ride along as __context__.
            raise InvalidRequestError(
                f"invalid request: extra_headers: {refused}", field="extra_headers"
            )
        schema: dict[str, Any] | None
        schema_name = "response"
        if response_schema is None:
            schema = None
        elif isinstance(response_schema, type) and hasattr(response_schema, "model_json_schema"):
            schema = response_schema.model_json_schema()
            schema_name = response_schema.__name__
        elif isinstance(response_schema, Mapping):
            schema = dict(response_schema)
        else:
            raise InvalidRequestError(
                "invalid request: response_schema: expected a JSON schema dict or a pydantic "
                f"model class, got {type(response_schema).__name__}",
                field="response_schema",
            )
        try:
            # Everything goes to the model as given: one validation, one translation.
            return ChatRequest(
                messages=messages,
                tools=() if tools is None else tools,
                tool_choice=tool_choice,
                response_schema=schema,
                response_schema_name=schema_name,
                max_tokens=max_tokens,
                temperature=temperature,
                stop=stop,
                metadata={} if metadata is None else metadata,
                # As given: the model's validator names what is wrong with it.
                **({} if extra_headers is None else {"extra_headers": extra_headers}),
            )
        except ValidationError as exc:
            field, problem = first_problem(exc, ChatRequest, expected=_REQUEST_SHAPES)
        # Raised outside the except block: pydantic's error, which quotes the input
        # unscrubbed, must not ride along as __context__.
        where = f"{field}: " if field else ""
        raise InvalidRequestError(f"invalid request: {where}{problem}", field=field)

    def _skill_of(
        self, request: ChatRequest, skill: str | None, model: str | None = None
    ) -> str | None:
        """The skill, without awaiting anything (route(), and the sync classifier case).
        None when ``model=`` pins the route: no classifier runs for a skill nobody reads."""
        if skill is not None or model is not None:
            return skill
        classifier = self.skill_classifier
        text = _classified_text(request)
        if classifier is None:
            from hybridstack.routing.skills.classifier import classify_skill

            return classify_skill(text)
        if self._classifier_is_async:
            offline = getattr(classifier, "offline_guess", None)
            if not callable(offline):
                raise ConfigurationError(
                    "skill_classifier is async, and route() decides without calling a model: "
                    "pass skill=..., or give the classifier an offline_guess(text) method "
                    "(LLMSkillClassifier has one)"
                )
            return _skill_name(offline(text), classifier)
        result = classifier(text)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: avoid the "was never awaited" warning
            raise ConfigurationError(
                "skill_classifier returned an awaitable where a skill was needed right "
                "away (route()); make it an async def so the stack knows to await it, or "
                "pass skill=..."
            )
        return _skill_name(result, classifier)

    async def _skill_of_async(self, request: ChatRequest, skill: str | None) -> str | None:
        """The skill for complete()/stream(): awaits an async classifier."""
        if skill is not None or not self._classifier_is_async:
            return self._skill_of(request, skill)
        classifier = self.skill_classifier
        assert classifier is not None  # _classifier_is_async implies a classifier
        result = classifier(_classified_text(request))
        if inspect.isawaitable(result):
            result = await result
        return _skill_name(result, classifier)

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
            _check_constraint_names(self.catalog, constraints, "constraints", InvalidRequestError)
        plan = self.router.plan(
            request,
            skill=self._skill_of(request, skill, model),
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
            skill = await self._skill_of_async(request, None)
            messages = request
        return self._prepare(messages, skill, *rest, route_key=route_key)

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
        fields = {
            "tools": tools,
            "tool_choice": tool_choice,
            "response_schema": response_schema,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stop": stop,
            "metadata": metadata,
            "extra_headers": extra_headers,
        }
        settings = self._telemetry_settings()
        started = time.time_ns() if settings is not None else 0
        try:
            request, plan = await self._prepare_async(
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
        except Exception as error:
            if settings is not None and isinstance(error, HybridStackError):
                self._observer_for().routing_failed(settings, started, error, model)
            # Every way out of a call awaits at least once, routing errors (NoRouteError)
            # too: a caller retrying a call that cannot route must not starve the loop.
            await asyncio.sleep(0)
            raise
        execution = self._execution(budget, run_id, on_event)
        if settings is None:
            return await self._execute(plan, request, execution)
        call = self._observer_for().call(
            settings, execution, request, plan, model=model, started_ns=started, stream=False
        )
        return await call.run(self._execute(plan, request, execution))

    async def _execute(
        self, plan: Plan, request: ChatRequest, execution: dict[str, Any]
    ) -> ChatResponse:
        try:
            return await self.executor.execute(plan, request, **execution)
        except (AllAttemptsFailedError, BudgetExceededError) as error:
            nothing = self._nothing_answered(plan, error)
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
        fields = {
            "tools": tools,
            "tool_choice": tool_choice,
            "response_schema": response_schema,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stop": stop,
            "metadata": metadata,
            "extra_headers": extra_headers,
        }
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
        if _only_keyless(plan):
            # Only keyless (local) deployments: say so if none of them answers.
            events = self._explain_silence(events, plan)
        # The telemetry layer is outermost: its span sees the error the caller sees.
        return events if call is None else call.stream(events)

    async def _explain_silence(
        self, events: AsyncIterator[StreamEvent], plan: Plan
    ) -> AsyncIterator[StreamEvent]:
        async with _closing(events):
            try:
                async for event in events:
                    yield event
            except (AllAttemptsFailedError, BudgetExceededError) as error:
                nothing = self._nothing_answered(plan, error)
                if nothing is None:
                    raise
                raise nothing from error

    def _nothing_answered(self, plan: Plan, error: Exception) -> NoProviderError | None:
        """A :class:`NoProviderError` for a call that had only keyless (local) deployments
        to try because keys are missing, and none of them answered; else None."""
        if not _only_keyless(plan):
            return None
        candidates = [c.deployment for c in plan.candidates]
        group = error if isinstance(error, AllAttemptsFailedError) else error.__cause__
        errors = list(group.exceptions) if isinstance(group, AllAttemptsFailedError) else []
        if not errors or not all(_did_not_answer(e) for e in errors):
            return None
        # Hosted deployments the router left out only for want of their key.
        variables: list[str] = []
        for dep_id, why in plan.excluded.items():
            dep = self.catalog.deployments.get(dep_id)
            if dep is None or not dep.api_key_env:
                continue
            var = dep.api_key_env
            if var in why and var not in variables and not self._keys.available(dep):
                variables.append(var)
        if not variables:
            return None
        tried = list(dict.fromkeys(str(getattr(e, "deployment", "")) for e in errors))
        urls = list(dict.fromkeys(d.base_url for d in candidates if d.id in tried))
        any_key = any(needs_key(d) and self._keys.available(d) for d in self.catalog)
        head = (
            "no provider key is set"
            if not any_key
            else "none of the keys for the hosted deployments this request may use is set"
        )
        listed = ", ".join(variables[:8]) + (", …" if len(variables) > 8 else "")
        return NoProviderError(
            f"{head} and no local server answered (tried {len(tried)} local deployment(s) at "
            f"{', '.join(urls)}: connection failed). To fix it, set a key such as {listed} "
            "(`hybridstack doctor` lists every variable), or start a local OpenAI-compatible "
            "server (Ollama: `ollama serve`), or try the offline emulator "
            "(`hybridstack demo`, `hybridstack.testing.offline_stack()`)",
            variables=variables,
            tried=tried,
        )

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
        try:
            request, plan = await self._prepare_async(
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
        except Exception as error:
            if settings is not None and isinstance(error, HybridStackError):
                self._observer_for().routing_failed(settings, started, error, None)
            await asyncio.sleep(0)  # as in complete(): every way out awaits
            raise
        events = self._stream_events(
            plan, request, budget, run_id, on_event, settings, None, started
        )
        async with _closing(events):
            async for event in events:
                yield event

    def complete_sync(self, messages: MessagesInput | ChatRequest, **kwargs: Any) -> ChatResponse:
        """Blocking twin of :meth:`complete` for scripts (refuses inside an event loop)."""
        return run_sync(self._complete_and_close(messages, **kwargs), name="complete_sync")

    async def _complete_and_close(self, messages: Any, **kwargs: Any) -> ChatResponse:
        # Each sync call runs on a fresh event loop; SDK clients are bound to a loop,
        # so release them before the loop goes away.
        try:
            return await self.complete(messages, **kwargs)
        finally:
            await self._pool.aclose()

    def stream_sync(
        self, messages: MessagesInput | ChatRequest, **kwargs: Any
    ) -> Iterator[StreamEvent]:
        """Blocking twin of :meth:`stream` for scripts (refuses inside an event loop)."""

        async def events() -> AsyncIterator[StreamEvent]:
            try:
                async with _closing(self.stream(messages, **kwargs)) as stream:
                    async for event in stream:
                        yield event
            finally:
                await self._pool.aclose()

        return iterate_sync(events(), name="stream_sync")

    async def warm_up(self, deployments: Iterable[str | Deployment] | None = None) -> list[str]:
        """Import the SDKs and build the clients of this stack's deployments, off the loop.

        Call it once at start-up, inside the event loop that will serve requests (SDK
        clients belong to one loop), e.g. in a web server's lifespan hook. Without it
        the first call of each protocol loads that SDK itself (on a worker thread, so
        the loop keeps running, but that first call waits 0.5-2 s for it).

        ``deployments`` (ids or deployments): which ones; default every enabled
        deployment whose key is available. Returns the ids that were warmed; one that
        cannot be built (its key is missing) is left out, not raised.
        """
        from hybridstack.providers import load_adapters

        if deployments is None:
            chosen = [d for d in self.catalog if d.enabled and self._keys.available(d)]
        else:
            chosen = [
                d if isinstance(d, Deployment) else self.catalog.deployment(d) for d in deployments
            ]
        imports: list[Awaitable[object]] = [load_adapters(d.protocol for d in chosen)]
        if self.skill_classifier is None:
            # The default classifier runs on calls without skill=; its tables load once.
            imports.append(asyncio.to_thread(importlib.import_module, _DEFAULT_CLASSIFIER))
        await asyncio.gather(*imports)
        warmed: list[str] = []
        for deployment in chosen:
            try:
                provider = await self._pool.aget(deployment)
            except ConfigurationError:
                continue
            await provider.warm_up()  # this loop's client, if aget made it for another
            warmed.append(deployment.id)
        return warmed

    async def aclose(self) -> None:
        """Close every provider client this stack opened (and a health store it built)."""
        await self._pool.aclose()
        if self._owns_store:
            await asyncio.to_thread(self.health_store.close)
        """Close every provider client this stack opened (and a ledger it opened)."""
        await self._pool.aclose()
        if self._own_ledger is not None:
            ledger, self._own_ledger = self._own_ledger, None
            ledger.close()

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@contextlib.asynccontextmanager
async def _closing(events: AsyncIterator[StreamEvent]) -> AsyncIterator[AsyncIterator[StreamEvent]]:
    """``contextlib.aclosing`` for any async iterator: closes it if it can be closed."""
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


# --- the skill classifier path ------------------------------------------------------------


def _is_async_callable(obj: object) -> bool:
    if obj is None:
        return False
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004 - instances with an async __call__
    )


def _classified_text(request: ChatRequest) -> str:
    user_text = "\n".join(m.text for m in request.messages if m.role == "user")
    return user_text or request.prompt_text


def _skill_name(result: object, classifier: object) -> str:
    # A name, or a SkillGuess / Classification (anything with a .skill str).
    skill = result if isinstance(result, str) else getattr(result, "skill", None)
    if not isinstance(skill, str) or not skill.strip():
        raise ConfigurationError(
            f"skill_classifier {classifier!r} returned {result!r}: it must return a skill "
            "name (str) or an object with a .skill str, such as a SkillGuess"
        )
    return skill

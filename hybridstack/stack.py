"""The facade a user imports: one object that wires catalog, routing, resilience and ledger.

``Stack`` turns ``await stack.complete(messages, skill=..., data_class=...)`` into a plan
(router), runs it (executor: retries, breakers, fail-over, hedging, budget) and records
every attempt (ledger). Building a Stack validates the sovereignty rules up front, so a
misconfigured route fails at start-up rather than leaking data at call time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hybridstack._secrets import SecretMapping
from hybridstack._sync import iterate_sync, run_sync
from hybridstack.catalog import Catalog, Deployment
from hybridstack.ledger import Ledger, MemoryLedger
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
from hybridstack.routing import DataClassRules, Plan, Policy, Router, SkillTable, redact
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    MessagesInput,
    StreamEvent,
    Tool,
    coerce_messages,
)

if TYPE_CHECKING:
    from hybridstack.providers import Provider
    from hybridstack.routing import RouteConstraints

__all__ = ["Stack"]

_call_counter = itertools.count(1)


def _new_call_id() -> str:
    # A short random prefix keeps ids unique across processes sharing one SQLite ledger.
    return f"c{_PROCESS_TAG}{next(_call_counter):06d}"


_PROCESS_TAG = uuid.uuid4().hex[:6]


def _redact_for_deployment(
    request: ChatRequest, deployment: Deployment
) -> tuple[ChatRequest, dict]:
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
        ledger: where attempts are recorded (default: in memory).
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
        ledger: Ledger | None = None,
        redact_personal_data: bool = False,
        api_keys: Mapping[str, str] | None = None,
        constraints: RouteConstraints | None = None,
        routes: Mapping[str, Sequence[str]] | None = None,
        run_id: str | None = None,
        skill_classifier: Callable[[str], str] | None = None,
    ) -> None:
        if stream_failover not in ("raise", "resume"):
            raise ValueError(
                f"stream_failover must be 'raise' or 'resume', not {stream_failover!r}"
            )
        self.catalog = catalog if catalog is not None else Catalog.default()
        self._api_keys = SecretMapping(api_keys)  # names in its repr, values never
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.latency = LatencyTracker()
        self.breakers = BreakerRegistry(breakers or BreakerSettings())
        self.budget = budget or Budget()
        self.redact_personal_data = redact_personal_data
        self.run_id = run_id
        self.skill_classifier = skill_classifier
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
            key_available=self._key_available,
        )
        # Fail closed at build time: a route that could leak raises SovereigntyError here.
        self.router.validate()
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
            stream_failover=stream_failover,
            latency=self.latency,
            on_success=self.router.record_choice,
        )

    def __repr__(self) -> str:
        return (
            f"Stack(deployments={len(self.catalog)}, policy={self.router.policy!s}, "
            f"ledger={type(self.ledger).__name__})"
        )

    # --- keys ------------------------------------------------------------------------

    def _key_for(self, deployment: Deployment) -> str | None:
        if deployment.id in self._api_keys:
            return self._api_keys[deployment.id]
        if deployment.api_key is not None:
            return deployment.api_key.get_secret_value()
        if deployment.api_key_env is None:
            return "not-needed"
        return self._api_keys.get(deployment.api_key_env) or os.environ.get(deployment.api_key_env)

    def _key_available(self, deployment: Deployment) -> bool:
        return bool(self._key_for(deployment))

    def _make_provider(self, deployment: Deployment) -> Provider:
        from hybridstack.providers import create_provider

        # Adapters see only the deployment; give it the family's features when the
        # deployment does not override them (e.g. json_object-only hosts).
        if deployment.features is None:
            deployment = deployment.model_copy(
                update={"features": self.catalog.features(deployment)}
            )
        return create_provider(deployment, api_key=self._key_for(deployment))

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
    ) -> ChatRequest:
        """A :class:`ChatRequest` from the loose arguments people pass."""
        if isinstance(messages, ChatRequest):
            return messages
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
            raise TypeError("response_schema must be a JSON schema dict or a pydantic model class")
        return ChatRequest(
            messages=tuple(coerce_messages(messages)),
            tools=tuple(t if isinstance(t, Tool) else Tool.model_validate(t) for t in tools or ()),
            tool_choice=tool_choice,
            response_schema=schema,
            response_schema_name=schema_name,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=tuple(stop or ()),
            metadata=dict(metadata or {}),
        )

    def _skill_of(self, request: ChatRequest, skill: str | None) -> str:
        if skill is not None:
            return skill
        classifier = self.skill_classifier
        if classifier is None:
            from hybridstack.graph.classifier import classify_skill as classifier

        user_text = "\n".join(m.text for m in request.messages if m.role == "user")
        return classifier(user_text or request.prompt_text)

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
        **request_fields: Any,
    ) -> Plan:
        """The plan for a request, without calling any model (explains the decision)."""
        _, plan = self._prepare(
            messages, skill, data_class, model, policy, constraints, stream, request_fields
        )
        return plan

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
    ) -> tuple[ChatRequest, Plan]:
        # One path from loose arguments to (request, plan) for route, complete and stream.
        request = self.build_request(messages, **request_fields)
        plan = self.router.plan(
            request,
            skill=self._skill_of(request, skill),
            data_class=data_class,
            model=model,
            policy=policy,
            constraints=constraints,
            stream=stream,
        )
        return request, plan

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
    ) -> ChatResponse:
        """Route, run with fail-over, record, and return the first good answer."""
        request, plan = self._prepare(
            messages,
            skill,
            data_class,
            model,
            policy,
            constraints,
            False,
            {
                "tools": tools,
                "tool_choice": tool_choice,
                "response_schema": response_schema,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "stop": stop,
                "metadata": metadata,
            },
        )
        return await self.executor.execute(
            plan, request, **self._execution(budget, run_id, on_event)
        )

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
    ) -> AsyncIterator[StreamEvent]:
        """Stream the reply: ``async for event in stack.stream(...)``.

        Fails over invisibly before the first token; after it, see ``stream_failover``.
        The plan is made when this is called (a routing error raises here); the request
        goes out when iteration starts. A caller that stops early should close the
        iterator (``contextlib.aclosing``) to have the attempt recorded as cancelled at
        once rather than when it is garbage-collected.
        """
        request, plan = self._prepare(
            messages,
            skill,
            data_class,
            model,
            policy,
            constraints,
            True,
            {
                "tools": tools,
                "tool_choice": tool_choice,
                "response_schema": response_schema,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "stop": stop,
                "metadata": metadata,
            },
        )
        # Returned as is, not re-yielded: every extra generator layer costs per event.
        return self.executor.stream(plan, request, **self._execution(budget, run_id, on_event))

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
                async with contextlib.aclosing(self.stream(messages, **kwargs)) as stream:
                    async for event in stream:
                        yield event
            finally:
                await self._pool.aclose()

        return iterate_sync(events(), name="stream_sync")

    async def aclose(self) -> None:
        """Close every provider client this stack opened."""
        await self._pool.aclose()

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

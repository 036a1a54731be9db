"""A small in-test stand-in for :class:`hybridstack.Stack` that implements
:class:`hybridstack.graph.ports.AgentStack` (checked at import by mypy and at run time by
``tests/test_graph_ports.py``).

Unit tests of the graph use it to script replies, failures and fail-over events exactly;
the tests that matter for durability, LangChain and fail-over run on the real Stack.
Its routes are real :class:`~hybridstack.plan.Plan` values over real catalog
:class:`~hybridstack.catalog.Deployment` values, so the graph reads them as it reads the
real router's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

from hybridstack.catalog import Deployment
from hybridstack.catalog.models import Price
from hybridstack.errors import AllAttemptsFailedError, FailoverError, NoRouteError
from hybridstack.graph.ports import AgentStack
from hybridstack.ledger import GroupBy
from hybridstack.plan import Candidate, Plan
from hybridstack.routing import UnknownDataClassError
from hybridstack.routing.skills import SKILLS
from hybridstack.types import (
    Attempt,
    ChatResponse,
    FinishEvent,
    Outcome,
    StreamEvent,
    TextDelta,
    Usage,
    UsageEvent,
    coerce_messages,
)

_PRICE = Price(input_per_mtok=1.0, output_per_mtok=2.0, as_of=date(2026, 1, 1))


def fake_deployment(family: str, site: str, jurisdiction: str) -> Deployment:
    """A catalog deployment ``family@site`` that nothing ever connects to."""
    return Deployment(
        family=family,
        site=site,
        protocol="openai",
        model=family,
        base_url="http://127.0.0.1:9/v1",
        region=site,
        jurisdiction=jurisdiction,
        operator="fake",
        price=_PRICE,
    )


DEPLOYMENTS = {
    "code": [
        fake_deployment("deepseek-v4-pro", "cn", "CN"),
        fake_deployment("qwen3-coder-plus", "sg", "SG"),
        fake_deployment("gpt-4o-mini", "us", "US"),
    ],
    "multilingual": [
        fake_deployment("qwen-plus", "sg", "SG"),
        fake_deployment("qwen-plus", "cn", "CN"),
    ],
    "reasoning": [
        fake_deployment("llama-3.3-70b", "us", "US"),
        fake_deployment("llama-3.3-70b", "eu", "EU"),
    ],
    "general": [
        fake_deployment("gpt-4o-mini", "us", "US"),
        fake_deployment("llama-3.3-70b", "eu", "EU"),
    ],
}
DATA_CLASSES: dict[str, tuple[str, ...] | None] = {
    "public": None,
    "internal": ("EU", "US", "SG", "LOCAL"),
    "personal": ("EU", "LOCAL"),
    "regulated": ("LOCAL",),
}


class FakeLedger:
    def __init__(self) -> None:
        self.records: list[Attempt] = []

    def record(self, attempt: Attempt) -> None:
        self.records.append(attempt)

    def attempts(self, *, call_id: str | None = None, run_id: str | None = None) -> list[Attempt]:
        return [a for a in self.records if run_id is None or a.run_id == run_id]

    def totals(
        self, *, run_id: str | None = None, by: GroupBy | None = None, **_: Any
    ) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        for a in self.attempts(run_id=run_id):
            row = out.setdefault(a.jurisdiction, {"attempts": 0, "cost_usd": 0.0})
            row["attempts"] += 1
            row["cost_usd"] += a.cost_usd
        return out


Reply = Callable[[list[Any], dict[str, Any]], str]


class FakeStack:
    """Scriptable: ``replies`` maps a marker found in the last user message to a reply
    (str, callable, or exception); ``failover`` markers emit a fail-over before answering."""

    def __init__(
        self,
        *,
        replies: Mapping[str, Any] | None = None,
        failover: set[str] | None = None,
        delay_s: float = 0.0,
        unroutable: set[tuple[str, str]] | None = None,
        scripted: Mapping[str, list[Any]] | None = None,
    ) -> None:
        #: stage ("plan", "synthesize", "review", "revise") -> replies consumed in order
        self.scripted = {k: list(v) for k, v in (scripted or {}).items()}
        self.replies = dict(replies or {})
        self.failover = set(failover or ())
        self.delay_s = delay_s
        self.unroutable = set(unroutable or ())
        self.ledger = FakeLedger()
        self.calls: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    # --- AgentStack ---------------------------------------------------------------------

    def allowed_jurisdictions(self, data_class: str) -> frozenset[str] | None:
        if data_class not in DATA_CLASSES:
            raise UnknownDataClassError(data_class, tuple(DATA_CLASSES))
        value = DATA_CLASSES[data_class]
        return None if value is None else frozenset(value)

    def known_skills(self) -> tuple[str, ...]:
        return SKILLS

    def _deployments(self, skill: str, data_class: str, model: str | None) -> list[Deployment]:
        allowed = DATA_CLASSES.get(data_class, ())
        pool = (
            [d for ds in DEPLOYMENTS.values() for d in ds] if model else DEPLOYMENTS.get(skill, [])
        )
        out = []
        for d in pool:
            if model and d.family != model:
                continue
            if (allowed is None or d.jurisdiction in allowed) and d not in out:
                out.append(d)
        return out

    def route(
        self,
        messages: Any,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        **_: Any,
    ) -> Plan:
        skill = skill or "general"
        deployments = (
            []
            if (skill, data_class) in self.unroutable
            else self._deployments(skill, data_class, model)
        )
        if not deployments:
            raise NoRouteError(
                f"no deployment for skill {skill!r} under data class {data_class!r}",
                {"gpt-4o-mini@us": "jurisdiction US not allowed"},
            )
        return Plan(
            skill=skill,
            data_class=data_class,
            policy="fake",
            candidates=tuple(Candidate(d, (f"ranked for {skill}",)) for d in deployments),
            allowed_jurisdictions=DATA_CLASSES.get(data_class),
        )

    def _answer(self, messages: Any, kwargs: dict[str, Any]) -> tuple[str, Deployment, int]:
        msgs = coerce_messages(messages)
        last = next(m.text for m in reversed(msgs) if m.role == "user")
        system = next((m.text for m in msgs if m.role == "system"), "")
        # Markers match a worker's own instruction, not the overall task quoted above it;
        # planner, review and synthesis calls are scripted by their own queues.
        chosen: Any = None
        if "Your subtask (" in last:
            focus = last.split("Your subtask (", 1)[1].split("Results of the subtasks", 1)[0]
            chosen = next((r for m, r in self.replies.items() if m in focus), None)
        else:
            focus = ""
            stage = (kwargs.get("metadata") or {}).get("stage") or (
                "plan" if "planner" in system else ""
            )
            queue = self.scripted.get(stage)
            if queue:
                chosen = queue.pop(0)
        plan = self.route(
            msgs,
            skill=kwargs.get("skill"),
            data_class=kwargs.get("data_class", "public"),
            model=kwargs.get("model"),
        )
        deployment = plan.candidates[0].deployment
        attempts = 1
        on_event = kwargs.get("on_event")
        for marker in self.failover:
            if marker in focus and len(plan.candidates) > 1:
                if on_event:
                    on_event(
                        SimpleNamespace(
                            kind="attempt_failed",
                            deployment=deployment.id,
                            to_deployment=None,
                            error_kind="fail_over",
                            message="quota",
                            delay_s=None,
                        )
                    )
                    on_event(
                        SimpleNamespace(
                            kind="failover",
                            deployment=deployment.id,
                            to_deployment=plan.candidates[1].deployment.id,
                            error_kind="fail_over",
                            message="quota",
                            delay_s=None,
                        )
                    )
                self._record(kwargs, deployment, "fail_over")
                deployment = plan.candidates[1].deployment
                attempts = 2
        if chosen is not None:
            if isinstance(chosen, BaseException):
                raise chosen
            text = chosen(msgs, kwargs) if callable(chosen) else str(chosen)
            return text, deployment, attempts
        return f"[{deployment.id}] answer: {last.splitlines()[-1][:60]}", deployment, attempts

    def _record(
        self,
        kwargs: dict[str, Any],
        d: Deployment,
        outcome: Outcome,
        usage: Usage | None = None,
        cost: float = 0.0,
    ) -> None:
        self.ledger.record(
            Attempt(
                call_id=f"c{len(self.ledger.records)}",
                run_id=kwargs.get("run_id"),
                deployment=d.id,
                family=d.family,
                jurisdiction=d.jurisdiction,
                started_at=datetime.now(UTC),
                outcome=outcome,
                usage=usage or Usage(),
                cost_usd=cost,
            )
        )

    def _response(
        self, text: str, d: Deployment, attempts: int, kwargs: dict[str, Any]
    ) -> ChatResponse:
        usage = Usage(input_tokens=10, output_tokens=len(text) // 4 + 1)
        self._record(kwargs, d, "ok", usage, 0.001)
        return ChatResponse(
            text=text,
            deployment=d.id,
            family=d.family,
            region=d.site,
            jurisdiction=d.jurisdiction,
            usage=usage,
            cost_usd=0.001,
            attempts=attempts,
            latency_s=self.delay_s,
        )

    async def complete(self, messages: Any, **kwargs: Any) -> ChatResponse:
        self.calls.append({"messages": coerce_messages(messages), **kwargs})
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            text, d, attempts = self._answer(messages, kwargs)
            return self._response(text, d, attempts, kwargs)
        finally:
            self.in_flight -= 1

    async def stream(self, messages: Any, **kwargs: Any) -> AsyncIterator[StreamEvent]:
        self.calls.append({"messages": coerce_messages(messages), "streamed": True, **kwargs})
        text, d, attempts = self._answer(messages, kwargs)
        for word in text.split(" "):
            yield TextDelta(text=word + " ")
        response = self._response(text, d, attempts, kwargs)
        yield UsageEvent(usage=response.usage)
        yield FinishEvent(finish_reason="stop", response=response)


# Checked by mypy: the fake implements the agent's port, as Stack does.
_PORT_CHECK: type[AgentStack] = FakeStack


def all_failed(deployment: str = "qwen-plus@sg") -> AllAttemptsFailedError:
    return AllAttemptsFailedError.from_errors(
        [
            FailoverError(
                "insufficient_quota", deployment=deployment, status=402, code="insufficient_quota"
            ),
            FailoverError("region blocked", deployment="qwen-plus@cn", status=403),
        ]
    )

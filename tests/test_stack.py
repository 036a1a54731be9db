"""The Stack facade over the emulator: wiring, sovereignty at build time, sync twins."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from hybridstack import (
    AllAttemptsFailedError,
    BudgetExceededError,
    ChatResponse,
    FinishEvent,
    NoRouteError,
    SovereigntyError,
    Stack,
    TextDelta,
)
from hybridstack.catalog import Catalog
from hybridstack.testing import offline_stack, offline_stack_sync


async def test_complete_routes_by_skill_and_records_a_priced_attempt() -> None:
    async with offline_stack(seed=3) as stack:
        reply = await stack.complete("Write a Python function that adds two numbers", skill="code")
        assert isinstance(reply, ChatResponse)
        assert reply.family.startswith("deepseek")
        assert "simulated" in reply.text
        assert reply.cost_usd > 0
        [attempt] = stack.ledger.attempts()
        assert attempt.deployment == reply.deployment
        assert attempt.outcome == "ok"
        assert attempt.cost_usd == pytest.approx(reply.cost_usd)
        assert attempt.skill == "code"


async def test_skill_is_classified_when_not_given() -> None:
    async with offline_stack(seed=3) as stack:
        reply = await stack.complete("Terjemahkan ke bahasa Inggris: terima kasih banyak")
        assert stack.ledger.attempts()[0].skill == "multilingual"
        assert reply.family.startswith("qwen") or reply.family in stack.catalog.families


async def test_personal_data_never_leaves_eu_or_local_even_under_outage() -> None:
    async with offline_stack(seed=1) as stack:
        allowed = [d.id for d in stack.catalog if d.jurisdiction in ("EU", "LOCAL")]
        stack.emulator.set_outage(allowed, True)
        # Either every allowed deployment fails or the attempt budget runs out first;
        # neither may spill into another jurisdiction.
        with pytest.raises((AllAttemptsFailedError, BudgetExceededError)):
            await stack.complete("Summarise Ana's complaint", data_class="personal")
        jurisdictions = {a.jurisdiction for a in stack.ledger.attempts()}
        assert jurisdictions <= {"EU", "LOCAL"}
        # Nothing outside EU/LOCAL received a request.
        outside = [d.id for d in stack.catalog if d.jurisdiction not in ("EU", "LOCAL")]
        assert sum(stack.emulator.counters(name).requests for name in outside) == 0


def test_a_pinned_route_outside_the_data_class_fails_at_build_time() -> None:
    with pytest.raises(SovereigntyError) as info:
        Stack(Catalog.default(), routes={"personal": ["qwen-plus@dashscope-cn"]})
    assert "qwen-plus@dashscope-cn" in str(info.value)


def test_unknown_data_class_is_refused_not_treated_as_public() -> None:
    with (
        offline_stack_sync() as stack,
        pytest.raises((NoRouteError, LookupError, ValueError)) as info,
    ):
        stack.route("hello", data_class="secret-ish")
    assert "personal" in str(info.value)


async def test_stream_yields_text_then_a_finish_with_the_whole_reply() -> None:
    async with offline_stack(seed=2) as stack:
        events = [e async for e in stack.stream("Say hello", skill="general")]
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert isinstance(events[-1], FinishEvent)
        assert events[-1].response.text == text
        assert stack.ledger.attempts()[0].streamed is True


async def test_tool_choice_and_structured_output_pass_through() -> None:
    class Order(BaseModel):
        order_id: str
        quantity: int

    async with offline_stack(seed=2) as stack:
        tool = {
            "name": "lookup_order",
            "description": "Find an order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        }
        reply = await stack.complete(
            "Where is my order?", skill="general", tools=[tool], tool_choice="required"
        )
        assert reply.tool_calls
        assert reply.tool_calls[0].name == "lookup_order"
        assert "order_id" in reply.tool_calls[0].arguments
        structured = await stack.complete(
            "Extract the order", model="gpt-4o-mini", response_schema=Order
        )
        Order.model_validate(structured.parsed())


def test_sync_twins_work_in_scripts_and_refuse_inside_a_loop() -> None:
    with offline_stack_sync(seed=4) as stack:
        reply = stack.complete_sync("Hello", skill="general")
        assert reply.text
        events = list(stack.stream_sync("Hello again", skill="general"))
        assert isinstance(events[-1], FinishEvent)

        async def inside() -> None:
            stack.complete_sync("Hello", skill="general")

        with pytest.raises(RuntimeError, match="await"):
            asyncio.run(inside())


def test_repr_has_no_secrets() -> None:
    stack = Stack(Catalog.default(), api_keys={"DEEPSEEK_API_KEY": "sk-very-secret-123456"})
    assert "sk-very-secret" not in repr(stack)
    assert "sk-very-secret" not in str(vars(stack.router))


async def test_one_provider_per_deployment_across_calls() -> None:
    async with offline_stack(seed=5) as stack:
        for _ in range(5):
            await stack.complete("Hello", model="qwen-plus@dashscope-sg")
        pool = stack._pool
        assert len(pool.providers()) == 1
        assert pool._retired == []


def test_a_custom_skill_classifier_decides_when_no_skill_is_given() -> None:
    seen: list[str] = []

    def always_code(text: str) -> str:
        seen.append(text)
        return "code"

    with offline_stack_sync(seed=1, skill_classifier=always_code) as stack:
        plan = stack.route("Bonjour, comment allez-vous ?")
        assert plan.skill == "code"
        assert seen == ["Bonjour, comment allez-vous ?"]
        assert stack.route("hello", skill="general").skill == "general"


def test_complete_and_stream_hand_on_every_request_option() -> None:
    # complete() and stream() pick their request options out of locals() by name: the
    # names must be build_request's keyword arguments and theirs, or a call would fail.
    import inspect

    from hybridstack._requests import REQUEST_FIELDS

    options = [
        name
        for name, p in inspect.signature(Stack.build_request).parameters.items()
        if p.kind is p.KEYWORD_ONLY
    ]
    assert sorted(options) == sorted(REQUEST_FIELDS)
    for method in (Stack.complete, Stack.stream):
        assert set(REQUEST_FIELDS) <= set(inspect.signature(method).parameters), method
    assert isinstance(inspect.getattr_static(Stack, "build_request"), staticmethod)

"""A reply that breaks the requested response schema is never recorded ``ok``."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from hybridstack import FinishEvent, SchemaMismatchError, StreamInterruptedError
from hybridstack.graph import HybridChatModel
from hybridstack.resilience.output import schema_violation
from hybridstack.testing import offline_stack


class Order(BaseModel):
    order_id: str
    quantity: int


PROMPT = "Extract the order: A-7, three units"


def json_object_only(stack: Any, family: str) -> list[str]:
    """The family's hosts that have JSON mode but do not enforce a schema."""
    return [
        d.id
        for d in stack.catalog
        if d.family == family and "json_schema" not in stack.catalog.features(d)
    ]


async def test_a_non_conforming_reply_fails_over_to_a_host_that_enforces_the_schema() -> None:
    async with offline_stack(seed=1, policy="cheapest") as stack:
        plan = stack.route(PROMPT, model="llama-3.3-70b", response_schema=Order)
        loose = json_object_only(stack, "llama-3.3-70b")
        assert plan.deployment_ids[0] in loose  # the cheapest host only has JSON mode
        reply = await stack.complete(PROMPT, model="llama-3.3-70b", response_schema=Order)
        Order.model_validate(reply.parsed())
        assert "json_schema" in stack.catalog.features(stack.catalog.deployments[reply.deployment])
        attempts = stack.ledger.attempts()
        *failed, answered = attempts
        assert answered.outcome == "ok"
        assert answered.deployment == reply.deployment
        assert failed, "the json_object-only hosts were tried first"
        for attempt in failed:
            assert attempt.deployment in loose
            assert attempt.outcome == "retry_here"
            assert attempt.error_type == "SchemaMismatchError"
            assert "required property 'order_id' is missing" in (attempt.error_message or "")
        # Each non-conforming reply was paid for: priced, and in the call's cost.
        priced = [a for a in failed if stack.catalog.deployments[a.deployment].price.input_per_mtok]
        assert priced
        assert all(a.cost_usd > 0 for a in priced)
        assert reply.cost_usd == pytest.approx(sum(a.cost_usd for a in attempts))
        # The hosts answered: their breakers count a success, not a failure.
        for attempt in failed:
            info = stack.breakers.state(attempt.deployment)
            assert (info.failures, info.successes) == (0, 1)


async def test_a_stream_that_breaks_the_schema_is_not_an_answer() -> None:
    async with offline_stack(seed=1, policy="cheapest", stream_failover="raise") as stack:
        events = stack.stream(PROMPT, model="llama-3.3-70b", response_schema=Order)
        with pytest.raises(StreamInterruptedError) as info:
            async for _ in events:
                pass
        assert isinstance(info.value.cause, SchemaMismatchError)
        [attempt] = stack.ledger.attempts()
        assert attempt.outcome == "retry_here"
        assert attempt.streamed


async def test_a_resumed_stream_ends_with_a_conforming_answer() -> None:
    async with offline_stack(seed=1, policy="cheapest", stream_failover="resume") as stack:
        events = [
            e async for e in stack.stream(PROMPT, model="llama-3.3-70b", response_schema=Order)
        ]
        finish = events[-1]
        assert isinstance(finish, FinishEvent)
        Order.model_validate(finish.response.parsed())
        assert stack.ledger.attempts()[-1].outcome == "ok"


async def test_langchain_json_schema_structured_output_over_a_mixed_family() -> None:
    async with offline_stack(seed=1, policy="cheapest") as stack:
        llm = HybridChatModel(stack=stack, skill="general", model="llama-3.3-70b")
        order = await llm.with_structured_output(Order, method="json_schema").ainvoke(PROMPT)
        assert isinstance(order, Order)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"},
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
        "kind": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Kind"}]},
        "ratio": {"type": "number", "exclusiveMaximum": 1},
    },
    "required": ["id", "n"],
    "additionalProperties": False,
    "$defs": {"Kind": {"type": "string", "const": "box"}},
}


@pytest.mark.parametrize(
    "value",
    [
        {"id": "A-7", "n": 3},
        {"id": "A-7", "n": 3, "tags": ["a"], "kind": None, "ratio": 0.5},
        {"id": "A-7", "n": 3, "kind": "box"},
        {"id": "a7", "n": 3},
        {"id": "A-7", "n": 0},
        {"id": "A-7", "n": 3.5},
        {"id": "A-7", "n": True},
        {"id": "A-7"},
        {"id": "A-7", "n": 3, "extra": 1},
        {"id": "A-7", "n": 3, "tags": ["a", "c"]},
        {"id": "A-7", "n": 3, "tags": ["a", "a", "b"]},
        {"id": "A-7", "n": 3, "kind": "bag"},
        {"id": "A-7", "n": 3, "ratio": 1},
        {"result": "text"},
        ["A-7", 3],
        "A-7",
    ],
)
def test_the_validator_agrees_with_jsonschema(value: Any) -> None:
    expected = jsonschema.Draft202012Validator(SCHEMA).is_valid(value)
    found = schema_violation(value, SCHEMA)
    assert (found is None) == expected, found

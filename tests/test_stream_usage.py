"""A stream that ends without a usage frame (llama.cpp) is estimated, not recorded as 0."""

from __future__ import annotations

from hybridstack import FinishEvent
from hybridstack.ledger.pricing import price_usage
from hybridstack.testing import offline_stack
from hybridstack.tokens import count_text

PROMPT = "Explain in two sentences why the sky looks blue at noon and red at sunset."


async def test_a_stream_without_a_usage_frame_gets_estimated_usage_marked_in_the_ledger() -> None:
    async with offline_stack(seed=1, policy="cheapest") as stack:
        openai_hosts = [d.id for d in stack.catalog if d.protocol == "openai"]
        stack.emulator.set_stream_usage(openai_hosts, False)
        events = [e async for e in stack.stream(PROMPT, model="gpt-4o-mini")]
        finish = events[-1]
        assert isinstance(finish, FinishEvent)
        reply = finish.response
        [attempt] = stack.ledger.attempts()
        assert attempt.protocol == "openai"  # the real openai SDK, no usage frame on the wire
        assert attempt.outcome == "ok"
        assert attempt.usage_estimated is True
        assert attempt.usage.input_tokens > 0
        assert attempt.usage.output_tokens == count_text(reply.text).tokens > 0
        assert reply.usage == attempt.usage
        dep = stack.catalog.deployments[attempt.deployment]
        assert attempt.cost_usd == price_usage(dep.price, attempt.usage, at=attempt.started_at)
        assert attempt.cost_usd > 0
        assert reply.cost_usd == attempt.cost_usd


async def test_a_stream_with_a_usage_frame_keeps_the_providers_counts() -> None:
    async with offline_stack(seed=1, policy="cheapest") as stack:
        events = [e async for e in stack.stream(PROMPT, model="gpt-4o-mini")]
        assert isinstance(events[-1], FinishEvent)
        [attempt] = stack.ledger.attempts()
        assert attempt.usage_estimated is False
        assert attempt.usage.output_tokens > 0

"""The agent on the real Stack over the emulator: fail-over events, failures, planner, review.

``offline_stack`` starts the emulator for every catalog deployment on loopback and
yields a Stack pointing at it: routing, retries, fail-over and the ledger are the
production code; only the model text is simulated.
"""

from __future__ import annotations

from typing import Any

import pytest

from hybridstack.errors import ConfigurationError
from hybridstack.graph import Agent, UnroutableSubtaskError
from hybridstack.testing import offline_stack


def _agent(stack: Any, **kwargs: Any) -> Agent:
    kwargs.setdefault("checkpointer", "memory")
    kwargs.setdefault("planner", "heuristic")
    return Agent(stack, **kwargs)


async def test_failover_shows_up_in_events_record_and_ledger() -> None:
    async with offline_stack(seed=5, policy="cheapest") as stack:
        instruction = "Translate 'the invoice is overdue' into Thai"
        plan = [
            {"id": "t1", "instruction": instruction, "skill": "multilingual"},
            {"id": "t2", "instruction": "Explain what an overdue invoice is", "skill": "general"},
        ]
        # The cheapest route's first two deployments have no quota left: fail over.
        route = stack.route(instruction, skill="multilingual")
        down = [c.deployment.id for c in route.candidates[:2]]
        stack.emulator.set_faults(down, quota_exhausted=True)
        events = [e async for e in _agent(stack).stream("Invoice help", plan=plan)]

    kinds = [e.type for e in events]
    failed = [e for e in events if e.type == "attempt_failed" and e.subtask_id == "t1"]
    moved = [e for e in events if e.type == "failed_over" and e.subtask_id == "t1"]
    assert failed
    assert moved
    assert moved[0].deployment in down
    assert moved[0].to_deployment
    assert "token" in kinds  # workers streamed through stack.stream
    done = next(e for e in events if e.type == "subtask_done" and e.subtask_id == "t1")
    assert done.deployment not in down
    assert done.attempts >= 2

    result = events[-1].result
    assert result.status == "completed"
    t1 = result.subtask("t1")
    assert t1.failed_over
    assert t1.route_taken[-1] == t1.deployment
    assert set(t1.route_taken[:-1]) <= set(down)
    # The subtask's own ledger attempts, failed ones included, linked by call id.
    outcomes = [a.outcome for a in t1.attempt_log]
    assert outcomes.count("fail_over") >= 2
    assert outcomes[-1] == "ok"
    assert result.totals.failed_attempts >= 2
    assert result.totals.attempts == len(result.ledger)
    assert {a.run_id for a in result.ledger} == {result.run_id}
    assert "(fail-over)" in result.to_markdown()
    assert "fail-over" in result._repr_html_()


async def test_subtask_failing_everywhere_is_recorded_and_the_run_goes_on() -> None:
    async with offline_stack(seed=5) as stack:
        family = "qwen-mt-turbo"
        stack.emulator.set_faults(
            [d.id for d in stack.catalog.deployments_of(family)], quota_exhausted=True
        )
        plan = [
            {
                "id": "a",
                "instruction": "Translate 'hello' into Thai",
                "skill": "multilingual",
                "model": family,
            },
            {"id": "b", "instruction": "Polish the translation", "depends_on": ["a"]},
            {"id": "c", "instruction": "Explain what a greeting is", "skill": "general"},
        ]
        result = await _agent(stack).run("Greetings", plan=plan)

    assert result.status == "partial"
    a = result.subtask("a")
    assert a.status == "failed"
    assert a.error is not None
    assert a.error.type == "AllAttemptsFailedError"
    tried = {attempt.deployment for attempt in a.error.attempts}
    assert tried == {d.id for d in stack.catalog.deployments_of(family)}
    assert all(attempt.kind == "fail_over" for attempt in a.error.attempts)
    assert result.subtask("b").status == "skipped"
    assert result.subtask("c").status == "done"
    assert result.final_answer


async def test_unroutable_subtask_and_unknown_data_class_are_refused_up_front() -> None:
    async with offline_stack(seed=5) as stack:
        agent = _agent(stack)
        plan = [
            {
                "id": "mt",
                "instruction": "Translate this file",
                "skill": "multilingual",
                "model": "qwen-mt-turbo",
            }
        ]
        with pytest.raises(UnroutableSubtaskError) as info:
            await agent.run("x", plan=plan, data_class="personal")
        assert info.value.subtask_id == "mt"
        assert info.value.data_class == "personal"
        assert "excluded" in str(info.value)  # the router's reasons come along
        with pytest.raises(ConfigurationError, match="unknown data class 'secretish'"):
            await agent.run("x", plan=plan, data_class="secretish")
        assert stack.emulator.total() == 0  # nothing was sent anywhere


async def test_llm_planner_falls_back_on_the_emulator_and_says_so() -> None:
    async with offline_stack(seed=5) as stack:
        agent = Agent(stack, checkpointer="memory")  # default planner: the LLM one
        result = await agent.run(
            "Write a Python function that slugifies titles. Then translate the result "
            "summary into Spanish."
        )
    # The emulator fills the plan schema with placeholder ids ("sample id"), which do
    # not validate: one corrective retry, then the heuristic planner takes over.
    assert result.planner == "llm→heuristic"
    assert [c.stage for c in result.calls].count("plan") == 2
    assert any("fell back to the heuristic planner" in n for n in result.plan_notes)
    assert [s.skill for s in result.subtasks] == ["code", "multilingual"]
    assert result.subtask("s2").depends_on == ["s1"]
    assert result.status == "completed"


async def test_code_review_catches_a_syntax_error_and_revises_elsewhere() -> None:
    async with offline_stack(seed=5) as stack:
        plan = [
            {
                "id": "code",
                "skill": "code",
                "instruction": "Write the slug function.\nEMULATOR_REPLY: ```python def slug(: ```",
            }
        ]
        result = await _agent(stack, review=True).run("Slugs", plan=plan)

    outcome = result.subtask("code")
    review = outcome.review
    assert review is not None
    assert review.compile_errors
    assert "SyntaxError" in review.compile_errors[0]
    assert review.revised
    assert review.reviewer_family != review.author_family
    assert review.reviser_family != review.author_family
    assert review.original_output == "```python def slug(: ```"
    assert outcome.output != review.original_output
    assert [c.stage for c in result.calls] == ["review", "revise"]

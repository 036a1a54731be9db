"""Planners: the heuristic splitter and the LLM planner's validate → retry → fall back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hybridstack.graph import EmptyTaskError, HeuristicPlanner, LLMPlanner, TaskPlan
from hybridstack.graph.planner import resolve_planner

sys.path.insert(0, str(Path(__file__).parent))

from graph_helpers.fake_stack import FakeStack, all_failed


def _split(task: str) -> TaskPlan:
    return HeuristicPlanner().split(task)


def test_numbered_list_items_run_in_parallel_unless_they_refer_back() -> None:
    plan = _split(
        "Please help with the launch:\n"
        "1. Write a Python function that validates coupon codes\n"
        "2. Explain what a coupon stacking rule is\n"
        "3. Translate step 2 into Japanese\n"
    )
    assert [s.skill for s in plan] == ["code", "general", "multilingual"]
    assert [s.depends_on for s in plan] == [(), (), ("s2",)]
    assert plan["s1"].instruction == "Write a Python function that validates coupon codes"


def test_closing_request_after_a_list_depends_on_every_item() -> None:
    plan = _split("- Summarise the Q3 report\n- List the three biggest risks\nThen combine them.")
    assert plan.ids == ["s1", "s2", "s3"]
    assert plan["s3"].depends_on == ("s1", "s2")
    assert plan["s3"].instruction == "Combine them."


def test_sentences_asking_for_separate_things_are_split_and_classified() -> None:
    plan = _split(
        "Write a Python function that parses ISO dates. Translate the README intro into "
        "German. Compare Postgres and MySQL for a small team."
    )
    assert len(plan) == 3
    assert [s.skill for s in plan][:2] == ["code", "multilingual"]
    assert all(not s.depends_on for s in plan)


def test_then_and_pronouns_link_to_the_previous_request() -> None:
    plan = _split("Write a haiku about the sea, and then translate it into French.")
    assert [s.instruction for s in plan] == [
        "Write a haiku about the sea",
        "Translate it into French.",
    ]
    assert plan["s2"].depends_on == ("s1",)
    assert plan["s2"].skill == "multilingual"


def test_context_sentences_stay_with_their_request() -> None:
    plan = _split("I run a bakery in Lyon. Draft a welcome email. Also list five cake names.")
    assert plan["s1"].instruction == "I run a bakery in Lyon. Draft a welcome email."
    assert len(plan) == 2


def test_one_request_stays_one_subtask() -> None:
    notes: list[str] = []
    plan = HeuristicPlanner().split("Summarise this article for me.", notes=notes)
    assert len(plan) == 1
    assert plan["s1"].instruction == "Summarise this article for me."
    assert "one subtask" in notes[0]
    # Non-English prose that the splitter cannot parse stays whole (never mangled).
    assert len(_split("请写一个Python函数。然后把它翻译成日文。")) == 1


def test_max_subtasks_merges_the_tail() -> None:
    task = "\n".join(f"{i}. Write function number {i} in Python" for i in range(1, 7))
    notes: list[str] = []
    plan = HeuristicPlanner(max_subtasks=3).split(task, notes=notes)
    assert len(plan) == 3
    assert "function number 6" in plan["s3"].instruction
    assert any("max_subtasks=3" in n for n in notes)


def test_empty_task_is_refused() -> None:
    with pytest.raises(EmptyTaskError):
        _split("   ")


def _plan_json(*subtasks: dict[str, object]) -> str:
    return json.dumps({"subtasks": list(subtasks)})


GOOD = _plan_json(
    {"id": "s1", "instruction": "Write the parser", "skill": "code", "depends_on": []},
    {
        "id": "s2",
        "instruction": "Document it in German",
        "skill": "multilingual",
        "depends_on": ["s1"],
    },
)


async def test_llm_planner_uses_a_valid_plan_and_asks_with_the_plan_schema() -> None:
    stack = FakeStack(scripted={"plan": [GOOD]})
    result = await LLMPlanner().plan("task", stack=stack, data_class="internal", run_id="r1")
    assert result.planner == "llm"
    assert result.plan.ids == ["s1", "s2"]
    assert result.plan["s2"].depends_on == ("s1",)
    call = stack.calls[0]
    assert call["skill"] == "reasoning"
    assert call["data_class"] == "internal"  # the planner sees the task: same data class
    assert call["response_schema"] == TaskPlan.llm_schema()
    assert call["run_id"] == "r1"
    assert result.calls[0]["stage"] == "plan"


async def test_llm_planner_retries_once_with_the_validation_error() -> None:
    cyclic = _plan_json(
        {"id": "a", "instruction": "x", "skill": "general", "depends_on": ["b"]},
        {"id": "b", "instruction": "y", "skill": "general", "depends_on": ["a"]},
    )
    stack = FakeStack(scripted={"plan": [cyclic, GOOD]})
    result = await LLMPlanner().plan("task", stack=stack, data_class="public")
    assert result.planner == "llm"
    assert len(result.plan) == 2
    retry = stack.calls[1]["messages"]
    assert retry[-2].role == "assistant"
    assert "dependency cycle" in retry[-1].text
    assert any("invalid plan" in n for n in result.notes)


async def test_llm_planner_falls_back_to_the_heuristic_after_two_bad_plans() -> None:
    stack = FakeStack(scripted={"plan": ["not json", '{"subtasks": [{"id": "sample id"}]}']})
    task = "Write a Python function that parses dates. Translate the result into Thai."
    result = await LLMPlanner().plan(task, stack=stack, data_class="public")
    assert result.planner == "llm→heuristic"
    assert len(stack.calls) == 2
    assert len(result.plan) == 2
    assert result.plan["s2"].depends_on == ("s1",)
    trace = " | ".join(result.notes)
    assert "not JSON" in trace
    assert "fell back to the heuristic planner" in trace


async def test_llm_planner_falls_back_when_the_call_fails() -> None:
    stack = FakeStack(scripted={"plan": [all_failed()]})
    result = await LLMPlanner().plan("Explain monads.", stack=stack, data_class="public")
    assert result.planner == "llm→heuristic"
    assert result.calls[0]["ok"] is False
    assert "AllAttemptsFailedError" in result.calls[0]["error"]


async def test_llm_planner_without_fallback_raises() -> None:
    stack = FakeStack(scripted={"plan": ["nope", "nope"]})
    with pytest.raises(ValueError, match="not JSON"):
        await LLMPlanner(use_fallback=False).plan("x", stack=stack, data_class="public")


async def test_unknown_skills_from_the_model_are_classified_not_rejected() -> None:
    odd = _plan_json(
        {
            "id": "s1",
            "instruction": "Write a SQL query for churn",
            "skill": "databases",
            "depends_on": [],
        }
    )
    stack = FakeStack(scripted={"plan": [odd]})
    result = await LLMPlanner().plan("x", stack=stack, data_class="public")
    assert result.plan["s1"].skill == "code"
    assert any("unknown skill 'databases'" in n for n in result.notes)


def test_resolve_planner() -> None:
    assert isinstance(resolve_planner(None), LLMPlanner)
    assert isinstance(resolve_planner("heuristic"), HeuristicPlanner)
    with pytest.raises(ValueError, match="unknown planner"):
        resolve_planner("magic")
    with pytest.raises(TypeError):
        resolve_planner(object())  # type: ignore[arg-type]

"""The agent graph over a scripted fake stack: waves, failures, approval, bad input, events.

The fake stack (tests/graph_helpers/fake_stack.py) scripts replies and failures exactly;
tests/test_graph_emulator.py and tests/test_graph_durability.py run on the real Stack.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.types import Command

from hybridstack.errors import AllAttemptsFailedError, NoRouteError
from hybridstack.graph import (
    AGENT_EVENT_ADAPTER,
    Agent,
    EmptyTaskError,
    GraphError,
    PlanRejectedError,
    PlanValidationError,
    RunResult,
    UnknownThreadError,
    UnroutableSubtaskError,
    build_agent_graph,
)
from hybridstack.graph.result import RunFailedError

sys.path.insert(0, str(Path(__file__).parent))

from graph_helpers.fake_stack import FakeStack, all_failed

PLAN = [
    {"id": "s1", "instruction": "Write the parser", "skill": "code"},
    {"id": "s2", "instruction": "Explain the format", "skill": "general"},
    {
        "id": "s3",
        "instruction": "Translate the explanation",
        "skill": "multilingual",
        "depends_on": ["s2"],
    },
    {
        "id": "s4",
        "instruction": "Write tests for the parser",
        "skill": "code",
        "depends_on": ["s1"],
    },
]


def _agent(stack: Any, **kwargs: Any) -> Agent:
    kwargs.setdefault("checkpointer", "memory")
    kwargs.setdefault("planner", "heuristic")
    return Agent(stack, **kwargs)


async def _events(agent: Agent, task: str, **kwargs: Any) -> list[Any]:
    return [e async for e in agent.stream(task, **kwargs)]


async def test_waves_run_in_parallel_and_dependants_get_their_inputs() -> None:
    stack = FakeStack(replies={"Explain the format": "EXPLANATION-TEXT"}, delay_s=0.05)
    result = await _agent(stack).run("Build a date parser", plan=PLAN, thread_id="t-waves")
    assert result.status == "completed"
    assert [s.status for s in result.subtasks] == ["done"] * 4
    worker_calls = [c for c in stack.calls if (c.get("metadata") or {}).get("stage") == "work"]
    prompts = {c["metadata"]["subtask"]: c["messages"][-1].text for c in worker_calls}
    assert "EXPLANATION-TEXT" in prompts["s3"]  # a dependant sees what it depends on
    assert "EXPLANATION-TEXT" not in prompts["s4"]
    # Wave one (s1, s2) ran together; then s3 and s4 together.
    assert stack.max_in_flight == 2
    order = [c["metadata"]["subtask"] for c in worker_calls]
    assert set(order[:2]) == {"s1", "s2"}
    assert set(order[2:]) == {"s3", "s4"}
    # Each worker called the stack with its own skill and the inherited data class.
    assert {c["metadata"]["subtask"]: c["skill"] for c in worker_calls}["s3"] == "multilingual"
    assert all(c["data_class"] == "public" for c in worker_calls)
    assert all(c["run_id"] == "t-waves" for c in worker_calls)
    assert result.final_answer
    assert result.totals.cost_usd > 0
    assert len(result.ledger) == len(stack.ledger.records)


async def test_concurrency_limit_holds_across_a_wide_wave() -> None:
    plan = [{"id": f"p{i}", "instruction": f"item {i}"} for i in range(6)]
    stack = FakeStack(delay_s=0.05)
    agent = _agent(stack, max_concurrency=2)
    result = await agent.run("many things", plan=plan)
    assert result.status == "completed"
    assert stack.max_in_flight == 2
    stack.max_in_flight = 0
    await agent.run("many things", plan=plan, max_concurrency=3)  # per-run override
    assert stack.max_in_flight == 3


async def test_failed_subtask_is_summarised_and_its_dependants_skipped() -> None:
    stack = FakeStack(replies={"Explain the format": all_failed()})
    agent = _agent(stack)
    events = await _events(agent, "Build a date parser", plan=PLAN)
    result: RunResult = events[-1].result
    assert result.status == "partial"
    s2, s3 = result.subtask("s2"), result.subtask("s3")
    assert s2.status == "failed"
    assert s2.error is not None
    assert s2.error.type == "AllAttemptsFailedError"
    assert [a.deployment for a in s2.error.attempts] == ["qwen-plus@sg", "qwen-plus@cn"]
    assert s2.error.attempts[0].code == "insufficient_quota"
    assert s3.status == "skipped"
    assert s3.blocked_by == ["s2"]
    assert "'s2' failed" in s3.skip_reason
    # The other branch ran to the end.
    assert result.subtask("s4").status == "done"
    kinds = [e.type for e in events]
    assert "subtask_failed" in kinds
    assert "subtask_skipped" in kinds
    # The failure summary survives the checkpoint round trip as plain data.
    again = await agent.result(result.thread_id)
    assert again.subtask("s2").error.attempts[1].message == "region blocked"
    # In this process the exception group itself is at hand, and chained on raise.
    assert isinstance(result.exception("s2"), AllAttemptsFailedError)
    assert result.exception("s4") is None
    with pytest.raises(RunFailedError, match="s2") as info:
        result.raise_for_status()
    assert isinstance(info.value.__cause__, ExceptionGroup)


async def test_all_subtasks_failing_gives_a_failed_run_without_synthesis() -> None:
    stack = FakeStack(replies={"only": all_failed()})
    result = await _agent(stack).run("x", plan=[{"id": "a", "instruction": "only this"}])
    assert result.status == "failed"
    assert result.final_answer == ""
    assert not [c for c in stack.calls if (c.get("metadata") or {}).get("stage") == "synthesize"]


async def test_synthesis_failure_keeps_the_work() -> None:
    stack = FakeStack(scripted={"synthesize": [all_failed()]})
    result = await _agent(stack).run("x", plan=PLAN[:2])
    assert result.status == "completed"
    assert "## s1: Write the parser" in result.final_answer
    assert any(c.stage == "synthesize" and not c.ok for c in result.calls)


async def test_streaming_events_cover_the_whole_run() -> None:
    stack = FakeStack(failover={"Write the parser"})
    events = await _events(_agent(stack), "Build a date parser", plan=PLAN)
    kinds = [e.type for e in events]
    assert kinds[0] == "run_started"
    assert kinds[-1] == "run_finished"
    for kind in (
        "plan_made",
        "route_chosen",
        "subtask_started",
        "attempt_failed",
        "failed_over",
        "token",
        "subtask_done",
        "final_answer",
    ):
        assert kind in kinds, kind
    routes = [e for e in events if e.type == "route_chosen"]
    assert {r.subtask_id for r in routes} == {"s1", "s2", "s3", "s4"}
    assert routes[0].reasons == ["ranked for code"]
    assert routes[0].candidates
    failover = next(e for e in events if e.type == "failed_over")
    assert failover.subtask_id == "s1"
    assert failover.deployment == "deepseek-v4-pro@cn"
    assert failover.to_deployment == "qwen3-coder-plus@sg"
    tokens = [e for e in events if e.type == "token"]
    assert {t.subtask_id for t in tokens} >= {"s1", "s2", "s3", "s4"}
    assert any(t.stage == "synthesize" for t in tokens)
    done = next(e for e in events if e.type == "subtask_done" and e.subtask_id == "s1")
    assert done.route_taken == ["deepseek-v4-pro@cn", "qwen3-coder-plus@sg"]
    assert done.attempts == 2
    assert done.jurisdiction == "SG"
    # Every event round-trips through the discriminated union.
    for event in events:
        assert AGENT_EVENT_ADAPTER.validate_python(event.model_dump()) == event
    result = events[-1].result
    assert result.subtask("s1").failed_over


async def test_data_classes_are_inherited_and_carried_along_edges() -> None:
    stack = FakeStack()
    plan = [
        {"id": "a", "instruction": "Summarise the patient file", "data_class": "personal"},
        {"id": "b", "instruction": "Write a haiku"},
        {"id": "c", "instruction": "Turn the summary into a letter", "depends_on": ["a"]},
    ]
    result = await _agent(stack).run("x", plan=plan, data_class="internal")
    by_id = {s.id: s for s in result.subtasks}
    assert by_id["b"].data_class == "internal"
    assert by_id["a"].data_class == "personal"
    # c reads a's personal output, so it runs under the stricter class.
    assert by_id["c"].data_class == "personal"
    assert any("'c' runs as 'personal'" in n for n in result.plan_notes)
    synth = next(c for c in stack.calls if (c.get("metadata") or {}).get("stage") == "synthesize")
    assert synth["data_class"] == "personal"


async def test_unroutable_subtask_fails_before_anything_is_sent() -> None:
    stack = FakeStack(unroutable={("code", "regulated")})
    agent = _agent(stack)
    with pytest.raises(UnroutableSubtaskError) as info:
        await agent.run("x", plan=PLAN, data_class="regulated", thread_id="t-unroutable")
    error = info.value
    assert (error.subtask_id, error.skill, error.data_class) == ("s1", "code", "regulated")
    assert "'s1'" in str(error)
    assert "'code'" in str(error)
    assert "'regulated'" in str(error)
    assert isinstance(error, NoRouteError)
    assert error.exclusions
    assert stack.calls == []
    # Nothing was checkpointed for the refused run.
    with pytest.raises(UnknownThreadError):
        await agent.result("t-unroutable")


async def test_unroutable_planned_subtask_keeps_the_checkpoint_and_accepts_a_new_plan() -> None:
    # The planner (not the caller) produced an unroutable subtask: the run stops at
    # preflight with the plan saved; resuming with a routable plan continues the thread.
    stack = FakeStack(unroutable={("code", "personal")})
    agent = _agent(stack)
    with pytest.raises(UnroutableSubtaskError, match="'s1'"):
        await agent.run(
            "Write a Python function to parse dates", thread_id="t-pre", data_class="personal"
        )
    paused = await agent.result("t-pre")
    assert paused.status == "incomplete"
    assert paused.plan[0].skill == "code"
    result = await agent.resume(
        "t-pre", plan=[{"id": "n1", "instruction": "Describe it", "skill": "general"}]
    )
    assert result.status == "completed"
    assert result.plan[0].id == "n1"


async def test_bad_input_errors() -> None:
    agent = _agent(FakeStack())
    with pytest.raises(EmptyTaskError):
        await agent.run("  ")
    with pytest.raises(PlanValidationError, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        await agent.run(
            "x",
            plan=[
                {"id": "a", "instruction": "1", "depends_on": ["b"]},
                {"id": "b", "instruction": "2", "depends_on": ["a"]},
            ],
        )
    with pytest.raises(PlanValidationError, match=r"unknown id.*'nope'"):
        await agent.run("x", plan=[{"id": "a", "instruction": "1", "depends_on": ["nope"]}])
    with pytest.raises(UnknownThreadError, match="no checkpoint for thread 'ghost'"):
        await agent.resume("ghost")
    done = await agent.run("x", plan=PLAN[:1], thread_id="t-used")
    with pytest.raises(GraphError, match="already has a run"):
        await agent.run("y", thread_id="t-used")
    # A finished thread resumes to its result without calling anything.
    calls = len(agent.stack.calls)
    again = await agent.resume("t-used")
    assert again.final_answer == done.final_answer
    assert len(agent.stack.calls) == calls


async def test_approval_pause_then_edit_then_run() -> None:
    stack = FakeStack()
    agent = _agent(stack, require_approval=True)
    events = await _events(agent, "Build a date parser", plan=PLAN, thread_id="t-approve")
    assert "approval_requested" in [e.type for e in events]
    paused = events[-1].result
    assert paused.status == "awaiting_approval"
    assert stack.calls == []
    # An invalid edit is refused and loses nothing: the thread is still paused.
    with pytest.raises(PlanValidationError):
        await agent.approve(
            "t-approve", plan=[{"id": "x", "instruction": "1", "depends_on": ["x"]}]
        )
    assert (await agent.result("t-approve")).status == "awaiting_approval"
    with pytest.raises(GraphError, match="waiting for plan approval"):
        await agent.resume("t-approve")
    edited = [{"id": "only", "instruction": "Write the parser", "skill": "code"}]
    result = await agent.approve("t-approve", plan=edited)
    assert result.status == "completed"
    assert result.approval == "edited"
    assert [s.id for s in result.subtasks] == ["only"]
    assert result.planner == "edited"


async def test_approval_reject_sends_nothing() -> None:
    stack = FakeStack()
    agent = _agent(stack, require_approval=True)
    await agent.run("x", plan=PLAN, thread_id="t-reject")
    result = await agent.reject("t-reject", reason="too expensive")
    assert result.status == "rejected"
    assert stack.calls == []
    assert "too expensive" in " ".join(result.plan_notes)
    with pytest.raises(PlanRejectedError, match="too expensive"):
        result.raise_for_status()


async def test_raw_graph_resumes_with_command() -> None:
    # The builder is a plain StateGraph: users compile it with their own saver and use
    # LangGraph's own interrupt/resume protocol.
    stack = FakeStack()
    builder = build_agent_graph(stack, require_approval=True, planner="heuristic")
    assert isinstance(builder, StateGraph)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "raw"}}
    out = await graph.ainvoke(
        {"task": "x", "data_class": "public", "run_id": "raw", "user_plan": PLAN[:2]}, config
    )
    assert out["__interrupt__"][0].value["kind"] == "plan_approval"
    out = await graph.ainvoke(Command(resume={"action": "approve"}), config)
    assert out["final"]["text"]
    assert set(out["results"]) == {"s1", "s2"}


async def test_builder_is_extensible_and_drawable() -> None:
    builder = build_agent_graph(FakeStack(), review=True)
    builder.add_node("audit", lambda state: {})
    builder.add_edge("audit", "__end__")
    mermaid = builder.compile().get_graph().draw_mermaid()
    for node in ("plan", "preflight", "dispatch", "worker", "review", "synthesize"):
        assert node in mermaid


async def test_synthesis_answers_in_the_language_of_the_task() -> None:
    stack = FakeStack()
    await _agent(stack).run(
        "Schreibe eine kurze Notiz und übersetze sie danach bitte.", plan=PLAN[:2]
    )
    synth = next(c for c in stack.calls if (c.get("metadata") or {}).get("stage") == "synthesize")
    assert synth["skill"] == "multilingual"
    assert "Answer in German" in synth["messages"][0].text
    stack = FakeStack()
    await _agent(stack).run("Write a note and a summary.", plan=PLAN[:2])
    synth = next(c for c in stack.calls if (c.get("metadata") or {}).get("stage") == "synthesize")
    assert synth["skill"] == "general"


async def test_single_subtask_plan_skips_synthesis() -> None:
    stack = FakeStack(replies={"Explain": "THE ANSWER"})
    result = await _agent(stack).run("Explain the format", plan=[PLAN[1]])
    assert result.final_answer == "THE ANSWER"
    assert len(stack.calls) == 1


async def test_code_review_revises_broken_python_on_another_family() -> None:
    broken = "```python\ndef parse(:\n    pass\n```"
    fixed = "```python\ndef parse(text):\n    return text\n```"
    stack = FakeStack(
        replies={"Write the parser": broken},
        scripted={"review": ['{"approved": true, "issues": []}'], "revise": [fixed]},
    )
    result = await _agent(stack, review=True).run("x", plan=PLAN[:1])
    s1 = result.subtask("s1")
    review = s1.review
    assert review is not None
    assert review.compile_errors
    assert "SyntaxError" in review.compile_errors[0]
    assert review.revised
    assert not review.revision_compile_errors
    families = {review.author_family, review.reviewer_family, review.reviser_family}
    assert len(families) == 3  # author, reviewer and reviser are three different families
    assert s1.output == fixed
    assert review.original_output == broken
    review_call = next(c for c in stack.calls if (c.get("metadata") or {}).get("stage") == "review")
    assert review_call["model"] == review.reviewer_family != review.author_family


async def test_clean_code_passes_review_without_revision() -> None:
    stack = FakeStack(
        replies={"Write the parser": "```python\nx = 1\n```"},
        scripted={"review": ['{"approved": true, "issues": []}']},
    )
    result = await _agent(stack, review=True).run("x", plan=PLAN[:1])
    review = result.subtask("s1").review
    assert review is not None
    assert review.approved
    assert not review.revised


def test_sync_run_and_sqlite_checkpoints(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite"
    agent = Agent(FakeStack(), planner="heuristic", checkpoint_path=db)
    result = agent.run_sync("Write a haiku. Then translate it into French.", thread_id="sync-1")
    assert result.status == "completed"
    assert len(result.subtasks) == 2
    assert db.exists()
    # Another Agent (as another process would) reads the same thread back.
    again = Agent(FakeStack(), planner="heuristic", checkpoint_path=db).result_sync("sync-1")
    assert again.final_answer == result.final_answer
    assert "sync-1" in asyncio.run(agent.threads())


def test_result_renders_markdown_and_html() -> None:
    stack = FakeStack(failover={"Write the parser"}, replies={"Explain the format": all_failed()})
    result = Agent(stack, planner="heuristic", checkpointer="memory").run_sync("x <b>", plan=PLAN)
    markdown = result.to_markdown(include_graph=True)
    assert "| s1 | code | done | qwen3-coder-plus@sg | SG | 2 |" in markdown
    assert "(fail-over)" in markdown
    assert "```mermaid" in markdown
    assert "s3** skipped" in markdown
    html = result._repr_html_()
    assert "x &lt;b&gt;" in html  # escaped
    assert "fail-over" in html
    assert "hybridstack-mermaid" in html
    assert "flowchart TD" in html
    assert "AllAttemptsFailedError" in html
    assert result.graph_mermaid
    assert "dispatch" in result.graph_mermaid
    RunResult.model_validate_json(result.model_dump_json())  # JSON-serialisable


def test_import_hybridstack_does_not_import_langgraph() -> None:
    code = (
        "import sys, hybridstack, hybridstack.graph, hybridstack.routing.skills.classifier;"
        "hybridstack.routing.skills.classifier.classify_skill('hi');"
        "assert 'langgraph' not in sys.modules and 'langchain_core' not in sys.modules, 'eager';"
        "from hybridstack.graph import Agent;"
        "assert 'langgraph' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

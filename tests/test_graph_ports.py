"""The agent's seam to the stack: the AgentStack port, what implements it, and the names
around it (the data-class lattice in routing, the skill vocabulary, the Agent's async and
blocking method names)."""

from __future__ import annotations

import ast
import inspect
import warnings
from pathlib import Path
from typing import Any

import pytest
from graph_helpers.fake_stack import FakeLedger, FakeStack

from hybridstack import Stack
from hybridstack.errors import LedgerError
from hybridstack.graph import Agent
from hybridstack.graph.ports import AgentStack, LedgerReader, SyncStack
from hybridstack.routing import DataClassRules, UnknownDataClassError
from hybridstack.routing.skills import DEFAULT_SKILL_TABLE, SKILLS
from hybridstack.routing.sovereignty import strictest_data_class
from hybridstack.testing import offline_stack

ROOT = Path(__file__).resolve().parents[1]

# Checked by mypy (the real Stack implements the port structurally; so does the fake,
# whose module carries the same assignment).
_STACK_PORT: type[AgentStack] = Stack
_FAKE_PORT: type[AgentStack] = FakeStack

PLAN = [{"id": "a", "instruction": "Write a haiku"}]


# --- the port ---------------------------------------------------------------------------


async def test_the_real_stack_and_the_fake_implement_the_port() -> None:
    fake = FakeStack()
    assert isinstance(fake, AgentStack)
    assert isinstance(fake.ledger, LedgerReader)
    async with offline_stack(seed=3) as stack:
        assert isinstance(stack, AgentStack)
        assert isinstance(stack, SyncStack)
        assert isinstance(stack.ledger, LedgerReader)
    assert not isinstance(object(), AgentStack)


def test_the_fake_port_check_is_what_mypy_reads() -> None:
    api = pytest.importorskip("mypy.api")
    files = [str(Path(__file__)), str(ROOT / "tests" / "graph_helpers" / "fake_stack.py")]
    out, err, status = api.run(
        ["--follow-imports=silent", "--ignore-missing-imports", "--no-error-summary", *files]
    )
    assert status == 0, out + err


async def test_stack_answers_the_ports_questions() -> None:
    async with offline_stack(seed=3) as stack:
        assert stack.allowed_jurisdictions("public") is None
        assert stack.allowed_jurisdictions("personal") == frozenset({"EU", "LOCAL"})
        with pytest.raises(UnknownDataClassError, match="secretish"):
            stack.allowed_jurisdictions("secretish")
        skills = stack.known_skills()
        assert skills[: len(SKILLS)] == SKILLS


def test_a_custom_table_and_catalog_skill_are_known() -> None:
    stack = Stack(skill_table={"legal": ["qwen-plus"]})
    assert "legal" in stack.known_skills()
    assert set(SKILLS) <= set(stack.known_skills())


def test_the_graph_probes_no_stack_attributes() -> None:
    """Only the port's members are read off the stack: no router, catalog or getattr."""
    port = {"complete", "stream", "route", "ledger", "allowed_jurisdictions", "known_skills"}
    sync_twins = {"complete_sync", "stream_sync"}  # SyncStack, after an isinstance check
    for path in sorted((ROOT / "hybridstack" / "graph").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # ``stack`` as a parameter typed AgentStack, and ``self.stack`` anywhere.
        scopes: list[tuple[ast.AST, set[str]]] = [(tree, {"self.stack"})]
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                args = fn.args.args + fn.args.kwonlyargs
                if any(
                    a.arg == "stack" and "AgentStack" in ast.unparse(a.annotation or ast.Name(""))
                    for a in args
                ):
                    scopes.append((fn, {"stack"}))
        for scope, roots in scopes:
            for node in ast.walk(scope):
                if isinstance(node, ast.Attribute) and ast.unparse(node.value) in roots:
                    assert node.attr in port | sync_twins, f"{path.name}: {ast.unparse(node)}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and node.args
            ):
                target = ast.unparse(node.args[0])
                assert "stack" not in target, f"{path.name}: {ast.unparse(node)}"


# --- the data-class lattice (routing's sovereignty rules) -------------------------------


def test_the_strictest_class_is_the_one_inside_every_other() -> None:
    rules = DataClassRules({"eu-only": ["EU"], "us-only": ["US"]})
    assert rules.strictest(["public", "personal", "public"]) == "personal"
    assert rules.strictest(["personal", "regulated"]) == "regulated"
    assert rules.strictest(["internal"]) == "internal"
    assert rules.strictest([]) is None
    # EU+LOCAL and EU overlap, but neither holds the other's... EU is inside EU+LOCAL.
    assert rules.strictest(["personal", "eu-only"]) == "eu-only"
    assert rules.strictest(["eu-only", "us-only"]) is None  # nowhere legal for both
    with pytest.raises(UnknownDataClassError):
        rules.strictest(["public", "nope"])


def test_strictest_takes_any_allowed_function() -> None:
    allowed = {"a": None, "b": frozenset({"EU", "US"}), "c": frozenset({"US"})}
    assert strictest_data_class(["a", "b", "c"], allowed.__getitem__) == "c"
    assert strictest_data_class(["a", "b"], allowed.__getitem__) == "b"


# --- one skill vocabulary -----------------------------------------------------------------


def test_the_skill_table_covers_the_vocabulary_exactly() -> None:
    assert tuple(DEFAULT_SKILL_TABLE) == SKILLS


def test_no_module_defines_the_skill_names_again() -> None:
    """The four built-in names are written once, in routing/skills/vocabulary.py."""
    literal = '("code", "multilingual", "reasoning", "general")'
    hits = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "hybridstack").rglob("*.py")
        if literal in path.read_text(encoding="utf-8")
    ]
    assert hits == ["hybridstack/routing/skills/vocabulary.py"]


def test_stack_and_routing_import_nothing_from_graph() -> None:
    """The facade and routing sit below the agent layer: no import points up into it."""
    paths = [ROOT / "hybridstack" / "stack.py", *(ROOT / "hybridstack" / "routing").rglob("*.py")]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("hybridstack.graph", "hybridstack.cli")), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )


# --- the Agent's names --------------------------------------------------------------------


def test_the_coroutines_have_the_plain_names() -> None:
    for name in ("run", "resume", "approve", "reject", "result", "threads"):
        assert inspect.iscoroutinefunction(getattr(Agent, name)), name
    for name in ("stream", "stream_resume"):
        assert inspect.isasyncgenfunction(getattr(Agent, name)), name
    for name in ("run", "stream", "resume", "stream_resume", "approve", "reject", "result"):
        twin = getattr(Agent, f"{name}_sync")
        assert not inspect.iscoroutinefunction(twin), twin


async def test_the_old_names_warn_and_still_work() -> None:
    agent = Agent(FakeStack(), planner="heuristic", checkpointer="memory")
    with pytest.warns(DeprecationWarning, match=r"Agent\.arun\(\) is deprecated.*agent\.run"):
        result = await agent.arun("Write a haiku", plan=PLAN, thread_id="old-1")
    assert result.status == "completed"
    with pytest.warns(DeprecationWarning, match="astream"):
        events = [e async for e in agent.astream("Write a haiku", plan=PLAN)]
    assert events[-1].type == "run_finished"
    with pytest.warns(DeprecationWarning, match="aresult"):
        assert (await agent.aresult("old-1")).status == "completed"
    with pytest.warns(DeprecationWarning, match="aresume"):
        assert (await agent.aresume("old-1")).status == "completed"
    with pytest.warns(DeprecationWarning, match="athreads"):
        assert "old-1" in await agent.athreads()


async def test_the_new_names_do_not_warn() -> None:
    agent = Agent(FakeStack(), planner="heuristic", checkpointer="memory")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        result = await agent.run("Write a haiku", plan=PLAN, thread_id="new-1")
        assert (await agent.result("new-1")).final_answer == result.final_answer
        assert "new-1" in await agent.threads()


async def test_the_blocking_twin_refuses_inside_a_loop_and_names_the_coroutine() -> None:
    agent = Agent(FakeStack(), planner="heuristic", checkpointer="memory")
    with pytest.raises(RuntimeError, match=r"await \.\.\.run\(\.\.\.\)"):
        agent.run_sync("Write a haiku", plan=PLAN)


# --- the ledger is read through the port ----------------------------------------------------


class _BrokenLedger(FakeLedger):
    """Records (the fake stack writes here), then fails every read."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def attempts(self, *, call_id: str | None = None, run_id: str | None = None) -> list[Any]:
        raise self.error

    def totals(self, *, run_id: str | None = None, by: Any = None, **_: Any) -> dict[str, Any]:
        raise self.error


async def test_a_ledger_store_failure_does_not_hide_the_result() -> None:
    stack = FakeStack()
    stack.ledger = _BrokenLedger(LedgerError("disk full"))
    result = await Agent(stack, planner="heuristic", checkpointer="memory").run(
        "Write a haiku", plan=PLAN
    )
    assert result.status == "completed"
    assert result.ledger == []


async def test_a_broken_ledger_is_a_bug_that_surfaces() -> None:
    stack = FakeStack()
    stack.ledger = _BrokenLedger(RuntimeError("ledger bug"))
    with pytest.raises(RuntimeError, match="ledger bug"):
        await Agent(stack, planner="heuristic", checkpointer="memory").run(
            "Write a haiku", plan=PLAN
        )

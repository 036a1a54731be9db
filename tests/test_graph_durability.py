"""Durable runs: kill a real agent process mid-run, resume the thread, nothing done is resent.

The emulator runs in this (the test) process; a subprocess runs the agent against it
with a SQLite checkpoint. One subtask's deployment is slow, so the subprocess is killed
(SIGKILL, no clean-up) while that subtask is in flight and two others have finished.
Resuming the thread must send only the unfinished subtasks, once: the emulator's
per-deployment counters and the ``x-hybridstack-call`` ids it logged prove that the
finished subtasks' deployments saw no second request, and that two processes resuming
the thread at the same moment did not both run it (the thread lease refuses one).
The dead process's lease is refused until it runs out, then the resume goes through.

Also here: 100 concurrent runs on one SQLite file, a store that stays locked (a
resumable hybridstack error), and paths that cannot hold checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridstack.catalog import Catalog
from hybridstack.testing import Emulator, emulator_config_for

HELPERS = Path(__file__).parent / "graph_helpers"
sys.path.insert(0, str(HELPERS.parent))

from graph_helpers.fake_stack import FakeStack  # noqa: E402
from graph_helpers.run_agent import EXIT_REFUSED, build_stack  # noqa: E402

FAST_CODE = "deepseek-flash@deepseek-cn"
FAST_MT = "qwen-mt-turbo@dashscope-sg"
SLOW = "llama-3.3-70b@scaleway-eu"
DEPENDANT = "qwen3-coder-plus@dashscope-sg"
SYNTH = "gpt-4o-mini@openai-eu"
ALL = [FAST_CODE, FAST_MT, SLOW, DEPENDANT, SYNTH]
THREAD = "kill-test-thread"
#: The killed process's lease TTL: long, so its lease is surely live when it is refused.
KILLED_LEASE_TTL = 300.0

PLAN = [
    {
        "id": "s1",
        "instruction": "Write a date parser in Python",
        "skill": "code",
        "model": FAST_CODE,
    },
    {
        "id": "s2",
        "instruction": "Translate 'good morning' into Thai",
        "skill": "multilingual",
        "model": FAST_MT,
    },
    {
        "id": "s3",
        "instruction": "Weigh the trade-offs of two designs",
        "skill": "reasoning",
        "model": SLOW,
    },
    {
        "id": "s4",
        "instruction": "Add tests for the parser",
        "skill": "code",
        "depends_on": ["s1"],
        "model": DEPENDANT,
    },
]
SKILL_TABLE = {
    "general": ["gpt-4o-mini"],
    "code": ["deepseek-flash"],
    "multilingual": ["qwen-mt-turbo"],
    "reasoning": ["llama-3.3-70b"],
}


def _saved_results(db: Path | str, thread_id: str) -> int:
    """How many worker results the checkpoint holds as pending writes for the thread."""
    if isinstance(db, str):  # a postgresql:// URL
        return _saved_results_postgres(db, thread_id)
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            row = conn.execute(
                "SELECT count(*) FROM writes WHERE thread_id = ? AND channel = 'results'",
                (thread_id,),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # tables not created yet, or briefly locked
        return 0
    return int(row[0])


def _saved_results_postgres(url: str, thread_id: str) -> int:
    import psycopg

    from hybridstack._postgres import parse_postgres_url

    target = parse_postgres_url(url)
    try:
        with psycopg.connect(target.conninfo, **target.connect_kwargs()) as conn:
            row = conn.execute(
                "SELECT count(*) FROM checkpoint_writes WHERE thread_id = %s "
                "AND channel = 'results'",
                (thread_id,),
            ).fetchone()
    except psycopg.Error:  # tables not created yet
        return 0
    return int(row[0]) if row else 0


def _run_config(
    tmp_path: Path, name: str, urls: dict[str, str], db: Path | str, **extra: Any
) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "urls": urls,
                "checkpoint": str(db),
                "thread_id": THREAD,
                "task": "Build a small date-parsing library and a design note.",
                "plan": PLAN,
                "skill_table": SKILL_TABLE,
                **extra,
            }
        )
    )
    return path


def _spawn(config: Path, *, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HELPERS / "run_agent.py"), str(config)],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _kill_mid_run(emulator: Emulator, tmp_path: Path, db: Path | str, **extra: Any) -> int:
    """Run the thread in a subprocess and SIGKILL it once s1 and s2 are saved and s3 is
    in flight: the point where a crash would otherwise lose or repeat work. Returns the
    dead process's pid."""
    urls = {d: emulator.base_url(d) for d in ALL}
    proc = _spawn(_run_config(tmp_path, "start", urls, db, **extra))
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"agent process ended early:\n{out}\n{err}")
            if _saved_results(db, THREAD) >= 2 and emulator.counters(SLOW).requests >= 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the agent process never reached the kill point")
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)  # reap it and close its pipes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    before = {d: emulator.counters(d) for d in ALL}
    assert before[FAST_CODE].ok == 1
    assert before[FAST_MT].ok == 1
    assert before[SLOW].requests == 1  # in flight when the process died
    assert before[DEPENDANT].requests == 0
    assert before[SYNTH].requests == 0
    return proc.pid


@contextlib.contextmanager
def _killed_thread(
    tmp_path: Path, store: str | None = None, **extra: Any
) -> Iterator[tuple[Emulator, Any, int]]:
    """The emulator, the checkpoint store (an SQLite file unless ``store`` is a
    ``postgresql://`` URL) and the dead pid of a run killed mid-wave."""
    config = emulator_config_for(
        Catalog.default(), include=ALL, faults={SLOW: {"latency_ms": 20_000}}
    )
    db: Path | str = store or tmp_path / "checkpoints.sqlite"
    with Emulator(config) as emulator:
        yield emulator, db, _kill_mid_run(emulator, tmp_path, db, **extra)


def _sent(emulator: Emulator) -> dict[str, int]:
    return {d: emulator.counters(d).requests for d in ALL}


async def _resume(urls: dict[str, str], db: Path | str, leases: Any) -> Any:
    from hybridstack.graph import Agent

    stack = build_stack(urls, SKILL_TABLE)
    try:
        agent = Agent(stack, checkpoint_path=db, leases=leases)
        # What the killed process left behind: two subtasks done, the rest pending.
        before = await agent.result(THREAD)
        assert before.status == "incomplete"
        assert [s.status for s in before.subtasks] == ["done", "done", "pending", "pending"]
        return await agent.resume(THREAD)
    finally:
        await stack.aclose()


@pytest.mark.timeout(90)
def test_killed_run_resumes_without_resending_finished_subtasks(tmp_path: Path) -> None:
    # A sync test: the kill choreography blocks (Popen, polling) and each resume runs on
    # its own event loop, as it would in a fresh process.
    from hybridstack import _stack_calls as stack_module  # call ids are made there
    from hybridstack.graph import SQLiteThreadLeases, ThreadBusyError

    with _killed_thread(tmp_path, lease_ttl=KILLED_LEASE_TTL) as (emulator, db, dead_pid):
        urls = {d: emulator.base_url(d) for d in ALL}
        emulator.set_faults(SLOW, latency_ms=0)  # the outage is over
        sent_before = _sent(emulator)

        # The dead process's lease is still live: without recognising the dead pid (as
        # a resume on another machine could not), the thread is refused, nothing sent.
        strict = SQLiteThreadLeases(db, reclaim_dead_holders=False)
        with pytest.raises(ThreadBusyError) as info:
            asyncio.run(_resume(urls, db, strict))
        refusal = info.value
        assert refusal.thread_id == THREAD
        assert refusal.holder.pid == dead_pid
        assert refusal.expires_at.timestamp() > time.time()
        assert f"pid {dead_pid}" in str(refusal)
        assert _sent(emulator) == sent_before

        # Once the lease has run out (the clock moved past it), the resume goes through.
        offset = refusal.expires_at.timestamp() - time.time() + 1
        later = SQLiteThreadLeases(
            db, reclaim_dead_holders=False, clock=lambda: time.time() + offset
        )
        result = asyncio.run(_resume(urls, db, later))

        after = {d: emulator.counters(d) for d in ALL}
        # Finished subtasks were not sent again: their deployments saw one request each,
        # and every call they logged came from the killed process, none from this one.
        assert after[FAST_CODE].requests == 1
        assert after[FAST_MT].requests == 1
        mine = f"c{stack_module._PROCESS_TAG}"
        for deployment in (FAST_CODE, FAST_MT):
            calls = after[deployment].ok_by_call()
            assert len(calls) == 1
            assert not any(call.startswith(mine) for call in calls)
        # The unfinished subtask ran again (here), then its dependant wave and synthesis.
        assert after[SLOW].requests == 2
        assert any(call.startswith(mine) for call in after[SLOW].ok_by_call())
        assert after[DEPENDANT].requests == 1
        assert after[SYNTH].requests == 1

    assert result.status == "completed", result.to_markdown()
    assert [s.status for s in result.subtasks] == ["done"] * 4
    assert result.subtask("s1").deployment == FAST_CODE
    assert result.subtask("s3").deployment == SLOW
    assert result.subtask("s4").deployment == DEPENDANT
    assert result.final_answer
    # The outputs the killed process produced survived in the checkpoint.
    assert result.subtask("s1").output.startswith(f"[simulated reply from {FAST_CODE}]")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_two_processes_resuming_one_thread_run_it_once(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    # Two real processes resume the killed thread at the same moment. One runs it; the
    # other is refused before sending anything. Without a lease both ran it and every
    # unfinished subtask and the synthesis were sent twice. On Postgres the lease is a
    # row on the server, as it would be for processes on two hosts.
    store = request.getfixturevalue("pg_url") if engine == "postgres" else None
    with _killed_thread(tmp_path, store) as (emulator, db, _dead_pid):
        urls = {d: emulator.base_url(d) for d in ALL}
        # The resumed run lasts seconds (its s3 call is slow), far longer than the gap
        # between two processes released by one line on stdin.
        emulator.set_faults(SLOW, latency_ms=4_000)
        resume = _run_config(tmp_path, "resume", urls, db, mode="resume", wait_for_go=True)
        procs = [_spawn(resume, stdin=True), _spawn(resume, stdin=True)]
        try:
            for proc in procs:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                assert line.startswith("ready"), line + (proc.stderr.read() if proc.stderr else "")
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            outputs = [proc.communicate(timeout=90) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        sent = _sent(emulator)

    codes = [proc.returncode for proc in procs]
    report = "\n".join(
        f"exit {c}:\n{out}\n{err}" for c, (out, err) in zip(codes, outputs, strict=True)
    )
    # No subtask or synthesis was sent twice: each unfinished one once, from the winner.
    assert sent[FAST_CODE] == 1, report
    assert sent[FAST_MT] == 1, report
    assert sent[SLOW] == 2, report  # the killed attempt and the one resumed run
    assert sent[DEPENDANT] == 1, report
    assert sent[SYNTH] == 1, report
    assert sorted(codes) == [0, EXIT_REFUSED], report
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    assert "finished completed" in outputs[winner][0]
    refusal_line = next(
        line for line in outputs[loser][0].splitlines() if line.startswith("refused ")
    )
    refusal = json.loads(refusal_line.removeprefix("refused "))
    assert refusal["holder_pid"] == procs[winner].pid
    assert f"thread {THREAD!r} is already being run" in refusal["message"]
    assert "Nothing was sent" in refusal["message"]
    assert "Traceback" not in outputs[loser][1]


# --- many runs in one process ---------------------------------------------------------------

CONCURRENT_TASK = (
    "Write a Python date parser, then translate its docs to German and explain the design"
)


@pytest.mark.timeout(240)
async def test_hundred_concurrent_runs_on_the_default_sqlite_checkpointer(tmp_path: Path) -> None:
    # 100 runs at once in one process, each streaming (the default), on one checkpoint
    # file: every run completes, and every thread is readable from the file afterwards.
    from hybridstack.graph import Agent
    from hybridstack.testing import offline_stack

    db = tmp_path / "checkpoints.sqlite"
    threads = [f"many-{i:03d}" for i in range(100)]
    async with offline_stack(seed=5) as stack:
        agent = Agent(stack, checkpoint_path=db)

        async def one(thread_id: str) -> Any:
            final = None
            async for event in agent.stream(CONCURRENT_TASK, thread_id=thread_id):
                final = event
            assert final is not None
            return final.result

        outcomes = await asyncio.gather(*(one(t) for t in threads), return_exceptions=True)
        errors = [
            f"{type(o).__module__}.{type(o).__name__}: {o}"
            for o in outcomes
            if isinstance(o, BaseException)
        ]
        assert not errors, f"{len(errors)} of 100 runs failed: {errors[:3]}"
        assert [o.status for o in outcomes] == ["completed"] * 100
        # Another agent (its own connection) reads every thread back from the file.
        reader = Agent(stack, checkpoint_path=db)
        assert sorted(await reader.threads()) == threads
        again = await asyncio.gather(*(reader.result(t) for t in threads))
        assert {r.status for r in again} == {"completed"}


# --- a store that fails --------------------------------------------------------------------

TWO_STEP_PLAN = [
    {"id": "s1", "instruction": "Write the parser", "skill": "code"},
    {"id": "s2", "instruction": "Document the parser", "skill": "general", "depends_on": ["s1"]},
]


async def test_a_store_locked_past_the_busy_timeout_stops_the_run_resumably(
    tmp_path: Path,
) -> None:
    from hybridstack.graph import Agent, CheckpointUnavailableError

    db = tmp_path / "checkpoints.sqlite"
    stack = FakeStack()
    agent = Agent(stack, planner="heuristic", checkpoint_path=db, checkpoint_busy_timeout=0.2)
    blocker = sqlite3.connect(db, timeout=10, isolation_level=None)

    async def run_until_locked() -> None:
        async for event in agent.stream("Parser work", plan=TWO_STEP_PLAN, thread_id="lk"):
            if event.type == "subtask_started" and event.subtask_id == "s2":
                # s1's result is saved by now. Another process takes the write lock and
                # keeps it past the timeout, so s2's result cannot be saved.
                blocker.execute("BEGIN IMMEDIATE")

    try:
        with pytest.raises(CheckpointUnavailableError) as info:
            await run_until_locked()
        error = info.value
    finally:
        if blocker.in_transaction:
            blocker.execute("ROLLBACK")
        blocker.close()
    assert error.thread_id == "lk"
    assert error.path == str(db)
    assert error.resumable is True
    text = str(error)
    assert "locked for more than 0.2 s" in text
    assert "agent.resume('lk')" in text
    assert f"hybridstack run --thread lk --checkpoints {db}" in text
    assert isinstance(error.__cause__, CheckpointUnavailableError)
    assert isinstance(error.__cause__.__cause__, sqlite3.OperationalError)

    # The lock is gone: the same process resumes at once (its abandoned lease is
    # reclaimed); s1, saved before the failure, is not sent again, s2 (unsaved) is.
    result = await agent.resume("lk")
    assert result.status == "completed"
    sent = [(c.get("metadata") or {}).get("subtask") for c in stack.calls]
    assert sent.count("s1") == 1
    assert sent.count("s2") == 2
    assert [s.status for s in result.subtasks] == ["done", "done"]


async def test_a_run_whose_first_checkpoint_fails_says_to_start_again(tmp_path: Path) -> None:
    from hybridstack.graph import Agent, CheckpointUnavailableError

    db = tmp_path / "checkpoints.sqlite"
    agent = Agent(FakeStack(), planner="heuristic", checkpoint_path=db, checkpoint_busy_timeout=0.2)
    await agent.threads()  # nothing yet, and no file made for it
    assert not db.exists()
    await agent.run("Warm-up", plan=TWO_STEP_PLAN[:1], thread_id="first")
    blocker = sqlite3.connect(db, timeout=10, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(CheckpointUnavailableError) as info:
            await agent.run("Parser work", plan=TWO_STEP_PLAN, thread_id="never-saved")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert info.value.resumable is False
    assert "agent.run(task, thread_id='never-saved')" in str(info.value)
    # As it says: the thread is started again, from nothing.
    result = await agent.run("Parser work", plan=TWO_STEP_PLAN, thread_id="never-saved")
    assert result.status == "completed"


# --- paths that cannot hold checkpoints -------------------------------------------------------


def _not_sqlite(tmp_path: Path) -> Path:
    path = tmp_path / "not-sqlite.file"
    path.write_text("name,price\nwidget,3\n" * 50)
    return path


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (_not_sqlite, "is not an SQLite database"),
        (lambda tmp: tmp, "is a directory, not a checkpoint file"),
        (lambda tmp: _not_sqlite(tmp) / "checkpoints.sqlite", "cannot create the directory"),
        (lambda tmp: Path("/proc/hybridstack-checkpoints.sqlite"), "cannot be opened or created"),
    ],
    ids=["not-sqlite", "directory", "parent-is-a-file", "unwritable"],
)
async def test_a_path_that_cannot_hold_checkpoints_is_a_clear_error(
    tmp_path: Path, make_path: Any, message: str
) -> None:
    from hybridstack.errors import ConfigurationError
    from hybridstack.graph import Agent, CheckpointStoreError

    path = make_path(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    stack = FakeStack()
    agent = Agent(stack, planner="heuristic", checkpoint_path=path)
    with pytest.raises(CheckpointStoreError, match=message) as info:
        await agent.run("Parser work", plan=TWO_STEP_PLAN)
    assert isinstance(info.value, ConfigurationError)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert stack.calls == []  # nothing was sent
    if before is not None:
        assert path.read_bytes() == before  # and the file was not touched


async def test_resuming_an_unknown_thread_names_the_file_and_creates_nothing(
    tmp_path: Path,
) -> None:
    from hybridstack.graph import Agent, UnknownThreadError

    missing = tmp_path / "typo.sqlite"
    agent = Agent(FakeStack(), planner="heuristic", checkpoint_path=missing)
    with pytest.raises(UnknownThreadError, match="which does not exist") as info:
        await agent.resume("ghost")
    assert str(missing) in str(info.value)
    with pytest.raises(UnknownThreadError):
        await agent.result("ghost")
    assert not missing.exists()

    db = tmp_path / "checkpoints.sqlite"
    agent = Agent(FakeStack(), planner="heuristic", checkpoint_path=db)
    await agent.run("Parser work", plan=TWO_STEP_PLAN, thread_id="real")
    with pytest.raises(UnknownThreadError) as info:
        await agent.resume("ghost")
    assert f"no checkpoint for thread 'ghost' in {db}" in str(info.value)
    assert "known threads: 'real'" in str(info.value)

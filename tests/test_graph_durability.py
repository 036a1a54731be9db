"""Durable runs: kill a real agent process mid-run, resume the thread, nothing done is resent.

The emulator runs in this (the test) process; a subprocess runs the agent against it
with a SQLite checkpoint. One subtask's deployment is slow, so the subprocess is killed
(SIGKILL, no clean-up) while that subtask is in flight and two others have finished.
Resuming the thread here must send only the unfinished subtasks: the emulator's
per-deployment counters and the ``x-hybridstack-call`` ids it logged prove that the
finished subtasks' deployments saw no second request.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hybridstack.catalog import Catalog
from hybridstack.testing import Emulator, emulator_config_for

HELPERS = Path(__file__).parent / "graph_helpers"
sys.path.insert(0, str(HELPERS.parent))

from graph_helpers.run_agent import build_stack  # noqa: E402

FAST_CODE = "deepseek-flash@deepseek-cn"
FAST_MT = "qwen-mt-turbo@dashscope-sg"
SLOW = "llama-3.3-70b@scaleway-eu"
DEPENDANT = "qwen3-coder-plus@dashscope-sg"
SYNTH = "gpt-4o-mini@openai-eu"
ALL = [FAST_CODE, FAST_MT, SLOW, DEPENDANT, SYNTH]

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


def _saved_results(db: Path, thread_id: str) -> int:
    """How many worker results the checkpoint holds as pending writes for the thread."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute(
                "SELECT count(*) FROM writes WHERE thread_id = ? AND channel = 'results'",
                (thread_id,),
            ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet, or briefly locked
        return 0
    return int(row[0])


async def _resume(urls: dict[str, str], db: Path, thread_id: str) -> Any:
    from hybridstack.graph import Agent

    stack = build_stack(urls, SKILL_TABLE)
    try:
        agent = Agent(stack, checkpoint_path=db)
        # What the killed process left behind: two subtasks done, the rest pending.
        before = await agent.aresult(thread_id)
        assert before.status == "incomplete"
        assert [s.status for s in before.subtasks] == ["done", "done", "pending", "pending"]
        return await agent.aresume(thread_id)
    finally:
        await stack.aclose()


@pytest.mark.timeout(60)
def test_killed_run_resumes_without_resending_finished_subtasks(tmp_path: Path) -> None:
    # A sync test: the kill choreography blocks (Popen, polling) and the resume runs on
    # its own event loop, as it would in a fresh process.
    from hybridstack import stack as stack_module

    catalog = Catalog.default()
    config = emulator_config_for(catalog, include=ALL, faults={SLOW: {"latency_ms": 20_000}})
    thread_id = "kill-test-thread"
    db = tmp_path / "checkpoints.sqlite"
    with Emulator(config) as emulator:
        urls = {d: emulator.base_url(d) for d in ALL}
        run_config = tmp_path / "run.json"
        run_config.write_text(
            json.dumps(
                {
                    "urls": urls,
                    "checkpoint": str(db),
                    "thread_id": thread_id,
                    "task": "Build a small date-parsing library and a design note.",
                    "plan": PLAN,
                    "skill_table": SKILL_TABLE,
                }
            )
        )
        proc = subprocess.Popen(
            [sys.executable, str(HELPERS / "run_agent.py"), str(run_config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 40
            # Kill once two finished subtasks are in the checkpoint and the slow one is
            # in flight: the point where a crash would otherwise lose or repeat work.
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"agent process ended early:\n{out.decode()}\n{err.decode()}")
                if _saved_results(db, thread_id) >= 2 and emulator.counters(SLOW).requests >= 1:
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

        # The outage is over: resume the thread in this process, from the checkpoint file.
        emulator.set_faults(SLOW, latency_ms=0)
        result = asyncio.run(_resume(urls, db, thread_id))

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

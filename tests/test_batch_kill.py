"""A batch whose worker process is killed with SIGKILL mid-run resumes without re-sending work.

The emulator runs in this (the test) process; ``hybridstack batch --engine local`` runs in
a subprocess against it (``--stack batch_helpers.stacks:emulated``). Four tasks, two at a
time: t1, t2 and t4 finish, t3 has one subtask done and the other in flight on a slow
deployment when the process is killed (no clean-up). Running the same command again
must complete every task while the emulator's per-deployment counters show that no
finished subtask was sent again: only t3's unfinished subtask and its synthesis are.

Parametrized over the checkpoint store: SQLite now; a Postgres URL where this
hybridstack's Agent takes one (skipped with a clear reason until then).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from hybridstack.catalog import Catalog
from hybridstack.testing import Emulator, emulator_config_for

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

from batch_helpers.scenario import (  # noqa: E402
    ALL,
    AT_KILL,
    RESENT,
    SKILL_TABLE,
    SLOW,
    T3_FAST,
    TASKS,
    saved_results,
)
from batch_helpers.stacks import SPEC_ENV, write_spec  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_or_skip() -> str:
    """The Postgres URL, when this hybridstack's Agent can take it as its checkpoints."""
    from hybridstack.batch.worker import checkpoint_options
    from hybridstack.errors import ConfigurationError
    from hybridstack.graph import Agent
    from hybridstack.stack import Stack

    try:
        options = checkpoint_options(POSTGRES_URL)
        Agent(Stack(), **options)
    except (ConfigurationError, ImportError, TypeError) as error:
        pytest.skip(f"postgres checkpoints not available: {error}")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def checkpoints(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(checkpoint store, thread prefix): unique prefixes keep parallel runs apart."""
    prefix = f"batch-kill-{uuid.uuid4().hex[:8]}-"
    if request.param == "sqlite":
        return str(tmp_path / "checkpoints.sqlite"), prefix
    return _postgres_or_skip(), prefix


def _first_subtask_saved(store: str, thread_id: str) -> bool:
    """The thread's first subtask is in the checkpoint store (so a kill cannot lose it)."""
    if "://" not in store:
        return saved_results(store, thread_id) >= 1  # SQLite: read the file directly
    import asyncio

    from hybridstack.batch.worker import checkpoint_options
    from hybridstack.graph import Agent, UnknownThreadError
    from hybridstack.stack import Stack

    async def read() -> bool:
        try:
            result = await Agent(Stack(), **checkpoint_options(store)).result(thread_id)
        except UnknownThreadError:
            return False
        return result.subtasks[0].status == "done"

    return asyncio.run(read())


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _spawn(tmp_path: Path, store: str, prefix: str, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "hybridstack",
        "batch",
        str(tmp_path / "tasks.jsonl"),
        "--engine",
        "local",
        "--concurrency",
        "2",
        "--stack",
        "batch_helpers.stacks:emulated",
        "--checkpoints",
        store,
        "--thread-prefix",
        prefix,
        "--no-progress",
        *extra,
    ]
    env = {
        **os.environ,
        SPEC_ENV: str(tmp_path / "stack.json"),
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.mark.timeout(120)
def test_killed_batch_worker_resumes_and_sends_no_finished_subtask_again(
    tmp_path: Path, checkpoints: tuple[str, str]
) -> None:
    store, prefix = checkpoints
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    results = tmp_path / "tasks.results.jsonl"
    config = emulator_config_for(
        Catalog.default(), include=ALL, faults={SLOW: {"latency_ms": 30_000}}
    )
    with Emulator(config) as emulator:
        write_spec(
            tmp_path / "stack.json",
            {d: emulator.base_url(d) for d in ALL},
            SKILL_TABLE,
            ledger=str(tmp_path / "ledger.sqlite"),
        )
        proc = _spawn(tmp_path, store, prefix)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    pytest.fail(f"the batch ended before the kill point:\n{out}\n{err}")
                done = {line["id"] for line in _lines(results)}
                if (
                    done == {"t1", "t2", "t4"}
                    and emulator.counters(T3_FAST).ok == 1
                    and emulator.counters(SLOW).requests == 1
                    and _first_subtask_saved(store, f"{prefix}t3")
                ):
                    break
                time.sleep(0.05)
            else:
                pytest.fail(f"the batch never reached the kill point: {_lines(results)}")
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == -signal.SIGKILL

        before = {d: emulator.counters(d).requests for d in ALL}
        assert before == AT_KILL
        emulator.set_faults(SLOW, latency_ms=0)  # the slow region is back

        again = _spawn(tmp_path, store, prefix, "--json")
        out, err = again.communicate(timeout=90)
        assert again.returncode == 0, f"{out}\n{err}"
        after = {d: emulator.counters(d).requests for d in ALL}

    report = json.loads(out)
    assert report["total"] == 4
    assert report["skipped"] == 3  # t1, t2, t4 were finished: not run again
    assert report["ran"] == 1
    assert report["resumed"] == 1  # t3 went on from its checkpoint
    # Not one finished subtask was sent again: their deployments saw no new request.
    sent_again = {d: after[d] - before[d] for d in ALL}
    assert sent_again == RESENT
    latest = {line["id"]: line for line in _lines(results)}
    assert {k: v["status"] for k, v in latest.items()} == {t["id"]: "completed" for t in TASKS}
    t3 = latest["t3"]
    assert t3["resumed"] is True
    assert [s["status"] for s in t3["subtasks"]] == ["done", "done"]
    # The cost table covers both runs (one SQLite ledger): five subtask calls and t3's
    # synthesis. The attempt in flight at the kill never finished, so it was never priced.
    assert sum(c["calls"] for c in report["costs"].values()) == 6
    assert report["costs"]["EU"]["calls"] == 2  # SLOW (resumed) and SYNTH
    assert report["costs"]["EU"]["cost_usd"] > 0

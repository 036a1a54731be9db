"""Agent checkpoints and thread leases on the real Postgres server.

A real agent process is killed (SIGKILL) mid-run with its checkpoints in Postgres; the
thread resumes without re-sending a finished subtask (the emulator's counters say so).
The lease contract every store passes runs on Postgres in tests/test_graph_leases.py;
here: the server's clock, a lease refused across processes, and bad URLs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from test_graph_durability import (
    ALL,
    DEPENDANT,
    FAST_CODE,
    FAST_MT,
    KILLED_LEASE_TTL,
    SLOW,
    SYNTH,
    _killed_thread,
    _resume,
    _sent,
)

from hybridstack.graph import (
    Agent,
    CheckpointStoreError,
    CheckpointUnavailableError,
    PostgresThreadLeases,
    ThreadBusyError,
)


@pytest.mark.timeout(90)
def test_killed_run_on_postgres_checkpoints_resumes_without_resending(
    tmp_path: Path, pg_url: str
) -> None:
    with _killed_thread(tmp_path, pg_url, lease_ttl=KILLED_LEASE_TTL) as (emulator, url, pid):
        urls = {d: emulator.base_url(d) for d in ALL}
        emulator.set_faults(SLOW, latency_ms=0)
        sent_before = _sent(emulator)
        # As another host would see it: the dead holder's lease is live, so: refused.
        strict = PostgresThreadLeases(url, reclaim_dead_holders=False)
        with pytest.raises(ThreadBusyError) as info:
            asyncio.run(_resume(urls, url, strict))
        assert info.value.holder.pid == pid
        assert _sent(emulator) == sent_before
        strict.close()
        # On the holder's own machine its dead pid is recognised: the resume goes on.
        result = asyncio.run(_resume(urls, url, "auto"))
        sent = _sent(emulator)
    assert result.status == "completed", result.to_markdown()
    assert sent[FAST_CODE] == 1  # finished before the kill: never sent again
    assert sent[FAST_MT] == 1
    assert sent[SLOW] == 2  # the killed attempt and the resumed one
    assert sent[DEPENDANT] == 1
    assert sent[SYNTH] == 1
    assert result.subtask("s1").output.startswith(f"[simulated reply from {FAST_CODE}]")


async def test_leases_use_the_servers_clock_and_hold_across_stores(pg_url: str) -> None:
    first, second = PostgresThreadLeases(pg_url), PostgresThreadLeases(pg_url)
    try:
        lease = await first.acquire("t", ttl=60)
        now = time.time()
        # The server's clock (the same machine here): within a minute of this one.
        assert abs(lease.acquired_at.timestamp() - now) < 60
        with pytest.raises(ThreadBusyError):
            await second.acquire("t", ttl=60, owner="someone-else")
        holder = await second.holder("t")
        assert holder is not None
        assert holder.owner == lease.owner
        assert await first.release(lease)
        assert await second.holder("t") is None
        taken = await second.acquire("t", ttl=60)
        assert taken.token == lease.token + 1
    finally:
        first.close()
        second.close()


async def test_an_unreachable_or_wrong_postgres_store_is_a_clear_error() -> None:
    from graph_helpers.fake_stack import FakeStack

    agent = Agent(
        FakeStack(),
        checkpoint_path="postgresql://postgres:pw-not-shown@127.0.0.1:1/test",
        checkpoint_busy_timeout=2,
        leases=None,
    )
    assert "pw-not-shown" not in repr(agent)
    with pytest.raises(CheckpointUnavailableError, match="cannot reach") as info:
        await agent.run("Parser work", plan=[{"id": "s1", "instruction": "x"}])
    assert "pw-not-shown" not in str(info.value)
    wrong = Agent(
        FakeStack(),
        checkpoint_path="postgresql://postgres@127.0.0.1:5432/no_such_database_here",
        leases=None,
    )
    with pytest.raises(CheckpointStoreError, match="check the user, password and database"):
        await wrong.run("Parser work", plan=[{"id": "s1", "instruction": "x"}])


def test_agent_selects_postgres_checkpoints_and_leases_by_url(pg_url: str) -> None:
    from graph_helpers.fake_stack import FakeStack

    agent = Agent(FakeStack(), checkpoint_path=pg_url)
    assert agent.checkpoint_url == pg_url
    assert agent.checkpoint_path is None
    assert isinstance(agent.leases, PostgresThreadLeases)


async def test_postgres_saver_uses_no_pipeline(pg_url: str) -> None:
    from hybridstack.graph.checkpoints import shared_saver

    async with shared_saver(pg_url) as saver:
        assert saver.supports_pipeline is False
        assert saver.pipe is None
        async with saver.conn.connection() as conn:
            cursor = conn.cursor()
            assert type(cursor).__name__ == "NoPipelineCursor"
            assert conn.prepare_threshold is None
            assert conn.autocommit


def test_cli_runs_on_postgres_checkpoints_and_ledger(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import json

    from hybridstack.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    store = ["--checkpoints", pg_url, "--ledger", pg_url]
    task = "Write a Python date parser, then translate its docs to German"
    assert main(["run", "--offline", "--no-progress", "--json", *store, task]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "completed"
    assert not (tmp_path / ".hybridstack").exists()  # nothing went to the default files
    assert main(["ledger", "--ledger", pg_url, "--json"]) == 0
    ledger = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in ledger["runs"]] == [first["thread_id"]]
    attempts = ledger["totals"]["attempts"]
    # Resumed from the Postgres checkpoint: a finished thread is read back, not re-run.
    thread = ["--thread", first["thread_id"]]
    assert main(["run", "--offline", "--no-progress", "--json", *store, *thread]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    assert main(["ledger", "--ledger", pg_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["attempts"] == attempts

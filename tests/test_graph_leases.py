"""Thread leases: one contract every store passes, then the agent refusing a second run.

The contract runs against each :class:`ThreadLeases` store (in-memory, SQLite, and
Postgres on the real server). Expiry is driven by an
injected clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from contextlib import closing as contextlib_closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hybridstack.graph import (
    Agent,
    CheckpointStoreError,
    LeaseLostError,
    ThreadBusyError,
)
from hybridstack.graph.leases import (
    InMemoryThreadLeases,
    PostgresThreadLeases,
    SQLiteThreadLeases,
    ThreadLease,
    ThreadLeases,
    new_owner_id,
)

sys.path.insert(0, str(Path(__file__).parent))

from graph_helpers.fake_stack import FakeStack


class Clock:
    """A settable clock (seconds since the epoch) for the stores."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


StoreFactory = Callable[..., ThreadLeases]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""

    def make(clock: Clock, **kwargs: Any) -> ThreadLeases:
        if request.param == "memory":
            return InMemoryThreadLeases(clock=clock, **kwargs)
        if request.param == "postgres":
            store = PostgresThreadLeases(url, clock=clock, **kwargs)
            request.addfinalizer(store.close)
            return store
        return SQLiteThreadLeases(tmp_path / "leases.sqlite", clock=clock, **kwargs)

    return make


def _foreign(lease: ThreadLease, **update: Any) -> ThreadLease:
    return lease.model_copy(update=update)


async def _wait_for(condition: Callable[[], Any], what: str) -> None:
    for _ in range(2000):  # 20 s at most: the heartbeat runs every 20 ms
        if await condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


# --- the contract -----------------------------------------------------------------------------


async def test_one_holder_at_a_time_and_the_refusal_names_it(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    first = await store.acquire("t1", owner="alpha", ttl=30)
    assert (first.thread_id, first.owner, first.token) == ("t1", "alpha", 1)
    assert first.pid == os.getpid()
    assert first.expires_at == datetime.fromtimestamp(clock.now + 30, tz=UTC)

    with pytest.raises(ThreadBusyError) as info:
        await store.acquire("t1", owner="beta", ttl=30)
    error = info.value
    assert error.thread_id == "t1"
    assert error.holder.owner == "alpha"
    assert error.expires_at == first.expires_at
    text = str(error)
    assert "'t1'" in text
    assert "'alpha'" in text
    assert first.expires_at.isoformat(timespec="seconds") in text
    assert "agent.resume('t1')" in text
    assert "Nothing was sent" in text

    # Other threads are independent; the holder itself may take it again.
    assert (await store.acquire("t2", owner="beta", ttl=30)).token == 1
    again = await store.acquire("t1", owner="alpha", ttl=30)
    assert again.owner == "alpha"
    assert (await store.holder("t1")) == again


async def test_an_expired_lease_is_taken_over_and_the_old_holder_loses_it(
    make_store: StoreFactory,
) -> None:
    clock = Clock()
    store = make_store(clock)
    old = await store.acquire("t", owner="alpha", ttl=30)
    clock.now += 29
    with pytest.raises(ThreadBusyError):
        await store.acquire("t", owner="beta", ttl=30)
    clock.now += 1  # exactly at expiry: free
    new = await store.acquire("t", owner="beta", ttl=30)
    assert (new.owner, new.token) == ("beta", old.token + 1)

    with pytest.raises(LeaseLostError) as info:
        await store.renew(old, ttl=30)
    assert info.value.holder is not None
    assert info.value.holder.owner == "beta"
    assert "'beta'" in str(info.value)
    assert await store.release(old) is False  # a stale release cannot free beta's lease
    assert (await store.holder("t")) == new


async def test_renewal_keeps_the_lease_and_release_frees_it_at_once(
    make_store: StoreFactory,
) -> None:
    clock = Clock()
    store = make_store(clock)
    lease = await store.acquire("t", owner="alpha", ttl=30)
    for _ in range(3):  # 60 s in all, renewed every 20 s: never free
        clock.now += 20
        lease = await store.renew(lease, ttl=30)
        with pytest.raises(ThreadBusyError):
            await store.acquire("t", owner="beta", ttl=30)
    assert lease.expires_at == datetime.fromtimestamp(clock.now + 30, tz=UTC)

    # An expired lease nobody took is still the holder's to renew.
    clock.now += 100
    lease = await store.renew(lease, ttl=30)
    with pytest.raises(ThreadBusyError):
        await store.acquire("t", owner="beta", ttl=30)

    assert await store.release(lease) is True
    assert await store.holder("t") is None
    taken = await store.acquire("t", owner="beta", ttl=30)
    assert taken.token == lease.token + 1


async def test_concurrent_acquirers_get_exactly_one_lease(make_store: StoreFactory) -> None:
    store = make_store(Clock())
    owners = [new_owner_id() for _ in range(20)]  # unique: owners are live per process
    outcomes = await asyncio.gather(
        *(store.acquire("race", owner=owner, ttl=30) for owner in owners),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, ThreadLease)]
    refused = [o for o in outcomes if isinstance(o, ThreadBusyError)]
    assert len(won) == 1
    assert len(refused) == 19
    assert {r.holder.owner for r in refused} == {won[0].owner}


async def test_a_lease_just_written_is_not_reclaimed_as_abandoned(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race seen under load: the winner's row is in the store, but its coroutine
    # has not resumed yet. A rival in this process that reads the row then must see a
    # live holder, not an abandoned lease of this process (which it may reclaim).
    store = make_store(Clock())
    owner = new_owner_id()  # not "first": owners are live per process, across tests
    written, rival_done = asyncio.Event(), asyncio.Event()
    insert = store._insert

    async def insert_then_stall(lease: ThreadLease) -> bool:
        inserted = await insert(lease)
        if lease.owner == owner:
            written.set()
            await rival_done.wait()  # a loaded loop resumes the writer late
        return inserted

    monkeypatch.setattr(store, "_insert", insert_then_stall)
    first = asyncio.create_task(store.acquire("t", owner=owner, ttl=30))
    await written.wait()
    try:
        with pytest.raises(ThreadBusyError) as info:
            await store.acquire("t", owner=new_owner_id(), ttl=30)
    finally:
        rival_done.set()
    assert info.value.holder.owner == owner
    lease = await first
    assert (lease.owner, lease.token) == (owner, 1)
    assert await store.holder("t") == lease


async def test_a_dead_holder_on_this_machine_is_reclaimed_at_once(
    make_store: StoreFactory,
) -> None:
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()  # reaped: its pid no longer exists
    clock = Clock()
    store = make_store(clock)
    template = await store.acquire("template", owner="probe", ttl=30)
    crashed = _foreign(template, thread_id="t", owner="crashed", pid=dead.pid)
    assert await store._insert(crashed)  # as the killed process left it: 30 s to go

    store.reclaim_dead_holders = False  # then only expiry frees it
    with pytest.raises(ThreadBusyError) as info:
        await store.acquire("t", owner="beta", ttl=30)
    assert info.value.holder.pid == dead.pid
    store.reclaim_dead_holders = True
    taken = await store.acquire("t", owner="beta", ttl=30)
    assert (taken.owner, taken.token) == ("beta", crashed.token + 1)

    # On another host the same pid says nothing: there, only expiry frees the thread.
    remote = _foreign(template, thread_id="r", owner="remote", pid=dead.pid, host="another-box")
    assert await store._insert(remote)
    with pytest.raises(ThreadBusyError):
        await store.acquire("r", owner="gamma", ttl=30)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_a_bad_ttl_is_refused(make_store: StoreFactory, ttl: float) -> None:
    store = make_store(Clock())
    with pytest.raises(ValueError, match="positive number of seconds"):
        await store.acquire("t", ttl=ttl)


async def test_hold_renews_in_the_background_and_releases_on_exit(
    make_store: StoreFactory,
) -> None:
    clock = Clock()
    store = make_store(clock)
    async with store.hold("t", ttl=30, renew_every=0.02) as held:
        assert held.lease.owner.split(":")[1] == str(os.getpid())
        clock.now += 25

        async def renewed() -> bool:
            current = await store.holder("t")
            return current is not None and current.expires_at.timestamp() >= clock.now + 29

        await _wait_for(renewed, "a heartbeat renewal")
        clock.now += 10  # past the first expiry: still held, thanks to the heartbeat
        with pytest.raises(ThreadBusyError):
            await store.acquire("t", owner="beta", ttl=30)
        await held.ensure()
    assert await store.holder("t") is None
    assert (await store.acquire("t", owner="beta", ttl=30)).owner == "beta"


async def test_a_held_lease_that_was_taken_over_is_reported_lost(
    make_store: StoreFactory,
) -> None:
    clock = Clock()
    store = make_store(clock)
    async with store.hold("t", ttl=30, renew_every=3600) as held:
        clock.now += 31  # this holder stalled past its TTL
        thief = await store.acquire("t", owner="thief", ttl=30)
        with pytest.raises(LeaseLostError) as info:
            await held.ensure()
        assert info.value.holder.owner == "thief"
        with pytest.raises(LeaseLostError):  # and it stays lost
            await held.ensure()
    # Leaving the block did not release the thief's lease.
    assert (await store.holder("t")) == thief


async def test_ensure_renews_when_the_heartbeat_is_late(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    async with store.hold("t", ttl=30, renew_every=3600) as held:
        before = held.lease.expires_at
        clock.now += 20
        await held.ensure()
        assert held.lease.expires_at == before  # not due: a read, no renewal
        held._renewed_at -= 10_000  # as if the loop had stalled for hours
        await held.ensure()
        assert held.lease.expires_at == datetime.fromtimestamp(clock.now + 30, tz=UTC)


def test_owner_ids_are_unique_and_name_the_process() -> None:
    a, b = new_owner_id(), new_owner_id()
    assert a != b
    assert a.split(":")[1] == str(os.getpid())


async def test_sqlite_leases_refuse_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("these are my notes, not a database\n" * 20)
    store = SQLiteThreadLeases(bogus)
    with pytest.raises(CheckpointStoreError, match="not an SQLite database"):
        await store.acquire("t")
    assert bogus.read_text().startswith("these are my notes")


# --- the agent -----------------------------------------------------------------------------

PLAN = [
    {"id": "s1", "instruction": "Write the parser", "skill": "code"},
    {"id": "s2", "instruction": "Document the parser", "skill": "general", "depends_on": ["s1"]},
]


async def test_two_resumes_of_one_thread_in_one_process_run_it_once(tmp_path: Path) -> None:
    stack = FakeStack(delay_s=0.2)
    agent = Agent(
        stack, planner="heuristic", require_approval=True, checkpoint_path=tmp_path / "c.sqlite"
    )
    paused = await agent.run("Parser work", plan=PLAN, thread_id="twice")
    assert paused.status == "awaiting_approval"
    outcomes = await asyncio.gather(
        agent.approve("twice"), agent.approve("twice"), return_exceptions=True
    )
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, ThreadBusyError)]
    assert len(done) == 1, outcomes
    assert len(refused) == 1, outcomes
    assert done[0].status == "completed"
    assert "another run in this process" in str(refused[0])
    # Each subtask and the synthesis were sent once.
    stages = [
        (c.get("metadata") or {}).get("subtask") or (c.get("metadata") or {}).get("stage")
        for c in stack.calls
    ]
    assert sorted(stages) == ["s1", "s2", "synthesize"]
    # The lease was released: the thread reads and resumes (to its result) at once.
    assert (await agent.resume("twice")).status == "completed"
    assert len(stack.calls) == 3


class _StealingStack(FakeStack):
    """Another process takes the thread over while s1 is in flight (this one stalled)."""

    def __init__(self, leases: InMemoryThreadLeases, clock: Clock) -> None:
        super().__init__()
        self.leases = leases
        self.clock = clock

    async def complete(self, messages: Any, **kwargs: Any) -> Any:
        if (kwargs.get("metadata") or {}).get("subtask") == "s1":
            self.clock.now += 3600
            await self.leases.acquire("stolen", owner="thief", ttl=30)
        return await super().complete(messages, **kwargs)


async def test_a_run_whose_lease_was_taken_over_stops_sending() -> None:
    clock = Clock()
    leases = InMemoryThreadLeases(clock=clock)
    stack = _StealingStack(leases, clock)
    agent = Agent(stack, planner="heuristic", checkpointer="memory", leases=leases)
    with pytest.raises(LeaseLostError) as info:
        await agent.run("Parser work", plan=PLAN, thread_id="stolen")
    assert info.value.thread_id == "stolen"
    assert info.value.holder.owner == "thief"
    sent = [(c.get("metadata") or {}).get("subtask") for c in stack.calls]
    assert sent == ["s1"]  # neither s2 nor the synthesis went out


def test_agent_lease_options_are_checked(tmp_path: Path) -> None:
    from hybridstack.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="lease_ttl"):
        Agent(FakeStack(), checkpointer="memory", lease_ttl=0)
    with pytest.raises(ConfigurationError, match="checkpoint_busy_timeout"):
        Agent(FakeStack(), checkpointer="memory", checkpoint_busy_timeout=float("nan"))
    with pytest.raises(ConfigurationError, match="leases must be"):
        Agent(FakeStack(), checkpointer="memory", leases="sqlite")  # type: ignore[arg-type]
    assert isinstance(Agent(FakeStack(), checkpointer="memory").leases, InMemoryThreadLeases)
    on_file = Agent(FakeStack(), checkpoint_path=tmp_path / "c.sqlite")
    assert isinstance(on_file.leases, SQLiteThreadLeases)
    assert on_file.leases.path == tmp_path / "c.sqlite"
    from langgraph.checkpoint.memory import InMemorySaver

    assert Agent(FakeStack(), checkpointer=InMemorySaver()).leases is None
    assert Agent(FakeStack(), checkpointer="memory", leases=None).leases is None


def test_preparing_a_fresh_file_waits_out_a_busy_wal_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Connections switching one fresh file to WAL at once: SQLite answers one of them
    # SQLITE_BUSY at once, without its busy handler (to avoid a deadlock).
    import sqlite3

    from hybridstack.graph.checkpoints import prepare_sqlite_file

    connect, refused = sqlite3.connect, []

    class BusyOnce:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def execute(self, sql: str, *args: Any) -> Any:
            if "journal_mode" in sql and not refused:
                refused.append(sql)
                error = sqlite3.OperationalError("database is locked")
                error.sqlite_errorcode = sqlite3.SQLITE_BUSY
                raise error
            return self.conn.execute(sql, *args)

        def close(self) -> None:
            self.conn.close()

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: BusyOnce(connect(*a, **k)))
    prepare_sqlite_file(tmp_path / "fresh.sqlite", busy_timeout=30)
    assert refused
    with contextlib_closing(connect(tmp_path / "fresh.sqlite")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)

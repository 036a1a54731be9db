"""Thread leases: at most one run drives a thread at a time; a dead holder's lease runs out.

Two processes resuming one thread would each send its unfinished subtasks and its
synthesis. The agent therefore takes a lease on the thread before it runs it, renews
the lease while the run goes on (a heartbeat), and releases it at the end. A second run
of the thread is refused with :class:`ThreadBusyError` (naming the holder and when its
lease runs out) before it sends anything. A holder that was killed stops renewing; once
its lease has expired, the thread can be resumed. On the holder's own machine a dead
holder is recognised at once (its pid is gone), so a crash is resumable immediately.

The seam is :class:`ThreadLeases`. Its public methods (``acquire``, ``renew``,
``release``, ``holder``, ``hold``) are written once, here, over six storage primitives;
every decision is a compare-and-set on a per-thread ``token`` that grows with each new
holder, so the stores need no locks of their own::

    _now()                         the store's clock (a database server uses its own)
    _get(thread_id)                the lease row, or None
    _insert(lease)                 add a row if the thread has none       -> bool
    _swap(thread_id, token, new)   replace the row if its token is token  -> bool
    _extend(lease, expires_at)     move expiry if owner and token match   -> bool
    _expire(lease, at)             end it now if owner and token match    -> bool

:class:`InMemoryThreadLeases` serves one process (the ``"memory"`` checkpointer);
:class:`SQLiteThreadLeases` keeps a table in the checkpoint file and holds across the
processes of one machine; :class:`PostgresThreadLeases` keeps the same table in a Postgres
database and holds across hosts: a row per thread with its owner, token and expiry (not
advisory locks, which a transaction pooler does not keep), every primitive one
autocommit statement, and the *server's* clock, so hosts whose clocks disagree still
agree on when a lease ran out.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import math
import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from hybridstack.graph.checkpoints import prepare_sqlite_file, store_error
from hybridstack.graph.subtasks import (
    CheckpointUnavailableError,
    LeaseLostError,
    ThreadBusyError,
)

__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "HeldLease",
    "InMemoryThreadLeases",
    "PostgresThreadLeases",
    "SQLiteThreadLeases",
    "ThreadLease",
    "ThreadLeases",
    "new_owner_id",
]

log = logging.getLogger(__name__)

#: Seconds a lease lasts without renewal. The holder renews every third of it.
DEFAULT_LEASE_TTL_S = 30.0
_MAX_RACES = 5


def _pid_namespace() -> str:
    """This process's pid namespace (Linux), so a pid is only judged in its own one."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


_HOST = socket.gethostname()
_PID_NS = _pid_namespace()
#: Owners in this process that hold a lease (acquired, not yet released or lost). A
#: lease of this process whose owner is not here was abandoned (its release failed, e.g.
#: the file was locked) and is reclaimed like a dead process's.
_LIVE_OWNERS: set[str] = set()


def new_owner_id() -> str:
    """A fresh owner id: host, pid and a random part (unique per run, even in one process)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:
        return True  # cannot tell: assume alive (the safe side)
    return True


class ThreadLease(BaseModel):
    """Who holds a thread, and until when (renewed by the holder while it runs)."""

    model_config = ConfigDict(frozen=True)

    thread_id: str
    owner: str
    #: Grows by one with every new holder: the compare-and-set key.
    token: int
    host: str
    pid: int
    #: Pid namespace of the holder (Linux); "" where unknown.
    pid_namespace: str = ""
    acquired_at: datetime
    expires_at: datetime

    def expired(self, now: float) -> bool:
        return self.expires_at.timestamp() <= now

    def held_by_this_process(self) -> bool:
        return self.host == _HOST and self.pid == os.getpid() and self.pid_namespace == _PID_NS

    def holder_is_dead(self) -> bool:
        """True only when the holder ran on this machine (same host and pid namespace)
        and its pid no longer exists. A reused pid reads as alive: the safe side."""
        if self.host != _HOST or self.pid_namespace != _PID_NS:
            return False
        if self.pid == os.getpid():
            return self.owner not in _LIVE_OWNERS
        return not _pid_alive(self.pid)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class ThreadLeases(abc.ABC):
    """The lease seam: see the module docstring for the six primitives a store provides.

    Args:
        reclaim_dead_holders: take over at once a lease whose holder ran on this machine
            and is gone (its pid no longer exists), instead of waiting for it to expire.
    """

    def __init__(self, *, reclaim_dead_holders: bool = True) -> None:
        self.reclaim_dead_holders = reclaim_dead_holders

    # --- the primitives a store implements -----------------------------------------------

    @abc.abstractmethod
    async def _now(self) -> float:
        """Seconds since the epoch, by the store's clock."""

    @abc.abstractmethod
    async def _get(self, thread_id: str) -> ThreadLease | None: ...

    @abc.abstractmethod
    async def _insert(self, lease: ThreadLease) -> bool: ...

    @abc.abstractmethod
    async def _swap(self, thread_id: str, token: int, lease: ThreadLease) -> bool: ...

    @abc.abstractmethod
    async def _extend(self, lease: ThreadLease, expires_at: float) -> bool: ...

    @abc.abstractmethod
    async def _expire(self, lease: ThreadLease, at: float) -> bool: ...

    # --- the public API --------------------------------------------------------------------

    def _new(self, thread_id: str, owner: str, token: int, now: float, ttl: float) -> ThreadLease:
        return ThreadLease(
            thread_id=thread_id,
            owner=owner,
            token=token,
            host=_HOST,
            pid=os.getpid(),
            pid_namespace=_PID_NS,
            acquired_at=_at(now),
            expires_at=_at(now + ttl),
        )

    @staticmethod
    def _check_ttl(ttl: float) -> None:
        if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"a lease TTL must be a positive number of seconds, not {ttl!r}")

    async def acquire(
        self, thread_id: str, *, owner: str | None = None, ttl: float = DEFAULT_LEASE_TTL_S
    ) -> ThreadLease:
        """Take the thread's lease for ``ttl`` seconds, or raise :class:`ThreadBusyError`.

        Succeeds when the thread has no lease, its lease expired or was released, its
        holder is dead (same machine, see ``reclaim_dead_holders``), or ``owner`` already
        holds it (then it is renewed).
        """
        self._check_ttl(ttl)
        owner = owner or new_owner_id()
        # The owner is live *before* its row can be seen: a rival in this process that
        # reads the row between the write and this coroutine resuming must not take it
        # for an abandoned lease of this process (see ``holder_is_dead``) and reclaim it.
        was_live = owner in _LIVE_OWNERS
        _LIVE_OWNERS.add(owner)
        try:
            return await self._take(thread_id, owner, ttl)
        except BaseException:
            if not was_live:
                _LIVE_OWNERS.discard(owner)
            raise

    async def _take(self, thread_id: str, owner: str, ttl: float) -> ThreadLease:
        current: ThreadLease | None = None
        for _ in range(_MAX_RACES):  # each retry means another acquirer changed the row
            now = await self._now()
            current = await self._get(thread_id)
            if current is None:
                lease = self._new(thread_id, owner, 1, now, ttl)
                if await self._insert(lease):
                    return lease
                continue
            free = (
                current.owner == owner
                or current.expired(now)
                or (self.reclaim_dead_holders and current.holder_is_dead())
            )
            if not free:
                raise ThreadBusyError(
                    thread_id, current, same_process=current.held_by_this_process()
                )
            lease = self._new(thread_id, owner, current.token + 1, now, ttl)
            if await self._swap(thread_id, current.token, lease):
                if current.owner != owner and not current.expired(now):
                    log.warning(
                        "took over the lease of thread %r from %s (pid %s on %s): its "
                        "holder is gone",
                        thread_id,
                        current.owner,
                        current.pid,
                        current.host,
                    )
                return lease
        holder = await self._get(thread_id) or current
        assert holder is not None
        raise ThreadBusyError(thread_id, holder, same_process=holder.held_by_this_process())

    async def renew(self, lease: ThreadLease, *, ttl: float = DEFAULT_LEASE_TTL_S) -> ThreadLease:
        """Extend a held lease by ``ttl`` from now; :class:`LeaseLostError` if another
        holder took it over (a lease that expired but was not taken is still renewed)."""
        self._check_ttl(ttl)
        now = await self._now()
        if await self._extend(lease, now + ttl):
            return lease.model_copy(update={"expires_at": _at(now + ttl)})
        _LIVE_OWNERS.discard(lease.owner)
        raise LeaseLostError(lease.thread_id, lease.owner, await self._get(lease.thread_id))

    async def release(self, lease: ThreadLease) -> bool:
        """End a held lease now (the thread is free at once). False if it was no longer ours.

        Should the store fail here, the lease runs out on its own within its TTL (and
        this process may reclaim it at once: its owner is no longer live)."""
        _LIVE_OWNERS.discard(lease.owner)
        return await self._expire(lease, await self._now())

    async def holder(self, thread_id: str) -> ThreadLease | None:
        """The lease in force on the thread, or None if it is free."""
        lease = await self._get(thread_id)
        if lease is None or lease.expired(await self._now()):
            return None
        return lease

    @contextlib.asynccontextmanager
    async def hold(
        self,
        thread_id: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL_S,
        owner: str | None = None,
        renew_every: float | None = None,
    ) -> AsyncIterator[HeldLease]:
        """Hold the thread's lease for the block: acquired on entry (or
        :class:`ThreadBusyError`), renewed every ``renew_every`` seconds (default a
        third of ``ttl``) while the block runs, released on exit."""
        lease = await self.acquire(thread_id, owner=owner, ttl=ttl)
        held = HeldLease(self, lease, ttl=ttl, renew_every=renew_every or ttl / 3)
        held._start()
        try:
            yield held
        finally:
            await held._stop()


class HeldLease:
    """A lease being held: renewed in the background; :meth:`ensure` before sending work."""

    def __init__(
        self, store: ThreadLeases, lease: ThreadLease, *, ttl: float, renew_every: float
    ) -> None:
        self.store = store
        self.lease = lease
        self.ttl = ttl
        self.renew_every = renew_every
        #: Set when the lease was taken over; :meth:`ensure` raises it.
        self.lost: LeaseLostError | None = None
        self._renewed_at = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    @property
    def thread_id(self) -> str:
        return self.lease.thread_id

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._heartbeat(), name=f"lease heartbeat {self.thread_id}"
        )

    async def _renew(self) -> None:
        try:
            self.lease = await self.store.renew(self.lease, ttl=self.ttl)
        except LeaseLostError as error:
            self.lost = error
            raise
        self._renewed_at = time.monotonic()

    async def _heartbeat(self) -> None:
        while self.lost is None:
            await asyncio.sleep(self.renew_every)
            try:
                await self._renew()
            except LeaseLostError:
                log.warning("%s", self.lost)
                return
            except Exception as error:  # the store hiccuped: try again next beat
                log.warning("could not renew the lease of thread %r: %s", self.thread_id, error)

    async def ensure(self) -> None:
        """Raise :class:`LeaseLostError` unless this run still holds the thread.

        Called before every model call: one read of the store (not a write), and a
        renewal when the heartbeat is late (a stalled loop), so work is only sent under
        a live lease.
        """
        if self.lost is not None:
            raise self.lost
        since = time.monotonic() - self._renewed_at
        try:
            current = await self.store._get(self.thread_id)
            if current is None or (current.owner, current.token) != (
                self.lease.owner,
                self.lease.token,
            ):
                self.lost = LeaseLostError(self.thread_id, self.lease.owner, current)
                _LIVE_OWNERS.discard(self.lease.owner)
                raise self.lost
            if since >= self.renew_every * 1.5:
                await self._renew()
        except LeaseLostError:
            raise
        except Exception as error:
            # The store is failing. Within the TTL nobody can have taken the thread
            # over, so the work may go on; past it, someone may have: stop.
            if since < self.ttl * 0.9:
                log.warning("could not check the lease of thread %r: %s", self.thread_id, error)
                return
            self.lost = LeaseLostError(self.thread_id, self.lease.owner)
            raise self.lost from error

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.lost is None:
            try:
                await self.store.release(self.lease)
            except Exception as error:  # it runs out on its own within one TTL
                log.warning("could not release the lease of thread %r: %s", self.thread_id, error)


# --- stores ---------------------------------------------------------------------------------


class InMemoryThreadLeases(ThreadLeases):
    """Leases for the runs of one process (the ``"memory"`` checkpointer's default)."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, reclaim_dead_holders: bool = True
    ) -> None:
        super().__init__(reclaim_dead_holders=reclaim_dead_holders)
        self._clock = clock
        self._rows: dict[str, ThreadLease] = {}

    async def _now(self) -> float:
        return self._clock()

    async def _get(self, thread_id: str) -> ThreadLease | None:
        return self._rows.get(thread_id)

    async def _insert(self, lease: ThreadLease) -> bool:
        return self._rows.setdefault(lease.thread_id, lease) is lease

    async def _swap(self, thread_id: str, token: int, lease: ThreadLease) -> bool:
        current = self._rows.get(thread_id)
        if current is None or current.token != token:
            return False
        self._rows[thread_id] = lease
        return True

    def _matches(self, lease: ThreadLease) -> bool:
        current = self._rows.get(lease.thread_id)
        return current is not None and (current.owner, current.token) == (
            lease.owner,
            lease.token,
        )

    async def _extend(self, lease: ThreadLease, expires_at: float) -> bool:
        if not self._matches(lease):
            return False
        self._rows[lease.thread_id] = lease.model_copy(update={"expires_at": _at(expires_at)})
        return True

    async def _expire(self, lease: ThreadLease, at: float) -> bool:
        return await self._extend(lease, at)

    def __repr__(self) -> str:
        return f"InMemoryThreadLeases({len(self._rows)} threads)"


_LEASE_TABLE = "hybridstack_thread_leases"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_LEASE_TABLE} (
    thread_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token INTEGER NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_namespace TEXT NOT NULL DEFAULT '',
    acquired_at REAL NOT NULL,
    expires_at REAL NOT NULL
)
"""
_COLUMNS = "thread_id, owner, token, host, pid, pid_namespace, acquired_at, expires_at"


class SQLiteThreadLeases(ThreadLeases):
    """Leases in a table (``hybridstack_thread_leases``) of the checkpoint file, so they
    hold across the processes of one machine that share the file.

    Every primitive is one SQL statement in autocommit mode, so each compare-and-set is
    atomic under SQLite's write lock. Each call opens a short-lived connection on a
    worker thread, so the store works from any event loop and never blocks one.

    Args:
        path: the SQLite file (normally the checkpoint file).
        clock: seconds since the epoch; the processes of one machine share its clock.
        busy_timeout: seconds to wait for another process's write lock.
        reclaim_dead_holders: see :class:`ThreadLeases`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
        reclaim_dead_holders: bool = True,
    ) -> None:
        super().__init__(reclaim_dead_holders=reclaim_dead_holders)
        self.path = Path(path).expanduser()
        self._clock = clock
        self.busy_timeout = busy_timeout
        self._ready = False

    def __repr__(self) -> str:
        return f"SQLiteThreadLeases({str(self.path)!r})"

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, list[tuple[Any, ...]]]:
        if not self._ready:
            prepare_sqlite_file(self.path, busy_timeout=self.busy_timeout)
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise store_error(self.path, error, busy_timeout=self.busy_timeout) from error
        try:
            if not self._ready:
                conn.execute(_SCHEMA)
                self._ready = True
            cursor = conn.execute(sql, params)
            return cursor.rowcount, cursor.fetchall()
        except sqlite3.Error as error:
            raise store_error(self.path, error, busy_timeout=self.busy_timeout) from error
        finally:
            conn.close()

    async def _execute(self, sql: str, *params: Any) -> tuple[int, list[tuple[Any, ...]]]:
        return await asyncio.to_thread(self._run, sql, params)

    @staticmethod
    def _row(lease: ThreadLease) -> tuple[Any, ...]:
        return (
            lease.thread_id,
            lease.owner,
            lease.token,
            lease.host,
            lease.pid,
            lease.pid_namespace,
            lease.acquired_at.timestamp(),
            lease.expires_at.timestamp(),
        )

    async def _now(self) -> float:
        return self._clock()

    async def _get(self, thread_id: str) -> ThreadLease | None:
        _, rows = await self._execute(
            f"SELECT {_COLUMNS} FROM {_LEASE_TABLE} WHERE thread_id = ?", thread_id
        )
        if not rows:
            return None
        tid, owner, token, host, pid, pid_ns, acquired, expires = rows[0]
        return ThreadLease(
            thread_id=tid,
            owner=owner,
            token=token,
            host=host,
            pid=pid,
            pid_namespace=pid_ns,
            acquired_at=_at(acquired),
            expires_at=_at(expires),
        )

    async def _insert(self, lease: ThreadLease) -> bool:
        count, _ = await self._execute(
            f"INSERT OR IGNORE INTO {_LEASE_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            *self._row(lease),
        )
        return count == 1

    async def _swap(self, thread_id: str, token: int, lease: ThreadLease) -> bool:
        count, _ = await self._execute(
            f"UPDATE {_LEASE_TABLE} SET owner = ?, token = ?, host = ?, pid = ?, "
            "pid_namespace = ?, acquired_at = ?, expires_at = ? WHERE thread_id = ? AND token = ?",
            *self._row(lease)[1:],
            thread_id,
            token,
        )
        return count == 1

    async def _extend(self, lease: ThreadLease, expires_at: float) -> bool:
        count, _ = await self._execute(
            f"UPDATE {_LEASE_TABLE} SET expires_at = ? "
            "WHERE thread_id = ? AND owner = ? AND token = ?",
            expires_at,
            lease.thread_id,
            lease.owner,
            lease.token,
        )
        return count == 1

    async def _expire(self, lease: ThreadLease, at: float) -> bool:
        return await self._extend(lease, at)


class PostgresThreadLeases(SQLiteThreadLeases):
    """Leases in a ``hybridstack_thread_leases`` table of a Postgres database, so they hold
    across every host that runs the agent on the same ``postgresql://`` URL.

    The same rows and compare-and-set statements as :class:`SQLiteThreadLeases`, on a
    small psycopg pool (autocommit, no prepared statements, so a transaction pooler is
    fine) used from worker threads: the store works from any event loop. The clock is
    the server's (``clock_timestamp()``). A holder on another host that died is not
    recognised: its lease runs out after its TTL.

    Args:
        url: ``postgresql://…`` (``?schema=NAME`` keeps the table in that schema).
        clock: seconds since the epoch; default (None) the server's clock.
        busy_timeout: seconds to wait for a pooled connection (the server unreachable).
        reclaim_dead_holders: see :class:`ThreadLeases`.
    """

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        busy_timeout: float = 30.0,
        reclaim_dead_holders: bool = True,
    ) -> None:
        from hybridstack._postgres import parse_postgres_url

        ThreadLeases.__init__(self, reclaim_dead_holders=reclaim_dead_holders)
        self._server_clock = clock is None
        self._clock = clock or time.time
        self.target = parse_postgres_url(url, what="lease store")
        self.busy_timeout = busy_timeout
        self._ready = False
        self._pool: Any = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresThreadLeases({self.target.shown!r})"

    def _connection_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from hybridstack._postgres import import_pool

                pool = import_pool("lease store").ConnectionPool(
                    self.target.conninfo,
                    kwargs=self.target.connect_kwargs(),
                    # No connection held while idle: an agent that stopped running
                    # threads keeps none of the server's connections.
                    min_size=0,
                    max_size=4,
                    max_idle=60.0,
                    num_workers=1,
                    timeout=self.busy_timeout,
                    name="hybridstack-leases",
                    open=True,
                )
                self._pool = pool
                weakref.finalize(self, pool.close)
            return self._pool

    def _prepare(self, conn: Any) -> None:
        from hybridstack._postgres import create_schema

        if self.target.schema is not None:
            create_schema(conn, self.target.schema)
        with conn.transaction():  # CREATE TABLE IF NOT EXISTS races on its own
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LEASE_TABLE,))
            conn.execute(_PG_SCHEMA)

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, list[tuple[Any, ...]]]:
        from hybridstack._postgres import import_psycopg

        psycopg = import_psycopg("lease store")
        sql = sql.replace("?", "%s").replace("INSERT OR IGNORE INTO", "INSERT INTO")
        if sql.startswith("INSERT INTO"):
            sql += " ON CONFLICT (thread_id) DO NOTHING"
        try:
            with self._connection_pool().connection() as conn:
                if not self._ready:
                    self._prepare(conn)
                    self._ready = True
                cursor = conn.execute(sql, params)
                rows = cursor.fetchall() if cursor.description is not None else []
                return cursor.rowcount, rows
        except psycopg.Error as error:
            detail = " ".join(str(error).split()) or type(error).__name__
            raise CheckpointUnavailableError(
                f"the thread lease store failed (Postgres: {detail})",
                path=self.target.shown,
                thread_id=params[0] if params and isinstance(params[0], str) else None,
            ) from error

    async def _now(self) -> float:
        if not self._server_clock:
            return self._clock()
        _, rows = await self._execute("SELECT extract(epoch FROM clock_timestamp())::float8")
        return float(rows[0][0])

    def close(self) -> None:
        """Close the connection pool (reopened on next use)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


_PG_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {_LEASE_TABLE} (
    thread_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    token BIGINT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    pid_namespace TEXT NOT NULL DEFAULT '',
    acquired_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
)
"""

"""Thread lease stores: in memory, in the SQLite checkpoint file, in Postgres.

The seam they implement, and every decision over it, is :mod:`hybridstack.graph.lease_protocol`
(its names are re-exported here, so ``hybridstack.graph.leases`` stays the one import).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybridstack.graph.checkpoints import prepare_sqlite_file, store_error
from hybridstack.graph.lease_protocol import (
    DEFAULT_LEASE_TTL_S,
    HeldLease,
    ThreadLease,
    ThreadLeases,
    _at,
    new_owner_id,
)
from hybridstack.graph.subtasks import CheckpointUnavailableError

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

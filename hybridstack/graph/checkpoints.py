"""The agent's checkpoint stores: one shared saver per store and event loop, SQLite or Postgres.

Why shared: LangGraph's ``AsyncSqliteSaver`` serialises everything it does on its one
aiosqlite connection with an ``asyncio.Lock``. Opening a saver per run meant one
connection per run, so 100 runs at once were 100 writers racing for SQLite's single
write lock, and the ones that waited longest got a raw ``database is locked`` before
their first checkpoint was saved (so they could not even be resumed). With one saver
per (event loop, file), the runs of a process queue on the saver's lock and SQLite sees
one writer per process. Between processes, WAL mode lets readers go on while a writer
commits, and the busy timeout makes a writer wait for the other process's commit
instead of failing.

Postgres (``checkpoint_path="postgresql://…"``): LangGraph's ``AsyncPostgresSaver`` over
a psycopg ``AsyncConnectionPool`` in autocommit mode with ``prepare_threshold=None`` and
``dict_row`` (as its docs require), shared the same way. No pipeline mode anywhere (a
transaction pooler such as PgBouncer may not pass it through): the saver's own pipelines
are switched off (it falls back to a transaction per write) and ``executemany`` runs its
statements one by one. The tables live in the URL's ``?schema=`` (see
:mod:`hybridstack._postgres`), set up once under an advisory lock, so two processes
starting on an empty database do not race.

Translation happens here, at the boundary to the database: a store that cannot hold
checkpoints raises :class:`CheckpointStoreError` (a configuration error: nothing ran);
a failure during a run raises :class:`CheckpointUnavailableError` naming the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from hybridstack._postgres import (
    PostgresTarget,
    describe_connect_error,
    import_pool,
    import_psycopg,
    is_postgres_url,
    parse_postgres_url,
)
from hybridstack.graph.subtasks import CheckpointStoreError, CheckpointUnavailableError

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_S",
    "check_checkpoint_path",
    "describe_sqlite_error",
    "prepare_sqlite_file",
    "shared_saver",
    "shared_sqlite_saver",
    "store_error",
]

#: Seconds a checkpoint write waits for another process's write lock before failing.
DEFAULT_BUSY_TIMEOUT_S = 30.0
_FIX_PATH = (
    "point checkpoint_path (CLI: --checkpoints) at an existing checkpoint file or a new path"
)
_FIX_WRITABLE = (
    "make the file and its directory writable (SQLite writes -wal and -shm files next to "
    "it), or point checkpoint_path (CLI: --checkpoints) at a writable path"
)


def check_checkpoint_path(path: Path, *, create: bool) -> bool:
    """Refuse, with what to fix, a path that cannot hold SQLite checkpoints.

    Returns whether the file exists. With ``create``, a missing parent directory is made.
    Whether an existing file is SQLite at all is left to SQLite's first read (see
    :func:`prepare_sqlite_file`): opening and closing the file here would drop the POSIX locks this
    process's open SQLite connections hold on it (closing any descriptor of a file drops
    them all), after which another process may delete the WAL under them.
    """
    if path.is_dir():
        raise CheckpointStoreError(
            f"{path} is a directory, not a checkpoint file; give a file path such as "
            f"{path / 'checkpoints.sqlite'}",
            path=str(path),
        )
    if path.exists():
        return True
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointStoreError(
                f"cannot create the directory for the checkpoint file {path} "
                f"({error.strerror or error}); {_FIX_WRITABLE}",
                path=str(path),
            ) from error
    return False


def describe_sqlite_error(error: sqlite3.Error, *, busy_timeout: float) -> str:
    """What went wrong, in words that say what it means for the file."""
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error)
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return (
            f"another process kept the file locked for more than {busy_timeout:g} s "
            f"(SQLite: {text})"
        )
    if name == "SQLITE_FULL" or "disk is full" in text:
        return f"the disk is full (SQLite: {text})"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return f"the file is read-only (SQLite: {text})"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return f"the file cannot be opened or created (SQLite: {text})"
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return f"it is not an SQLite database (SQLite: {text})"
    if name == "SQLITE_CORRUPT" or "malformed" in text:
        return f"the database file is corrupt (SQLite: {text})"
    return f"SQLite: {text}"


def _is_busy(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_BUSY") or "locked" in str(error)


def store_error(
    path: Path, error: sqlite3.Error, *, busy_timeout: float, thread_id: str | None = None
) -> CheckpointStoreError | CheckpointUnavailableError:
    """The hybridstack error for an SQLite failure while opening the store.

    A lock held past the busy timeout is a passing condition (retry later), not a bad
    path; everything else means the path cannot hold checkpoints.
    """
    detail = describe_sqlite_error(error, busy_timeout=busy_timeout)
    if _is_busy(error) or "disk is full" in str(error):
        return CheckpointUnavailableError(detail, path=str(path), thread_id=thread_id)
    name = getattr(error, "sqlite_errorname", "") or ""
    fix = _FIX_PATH if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") else _FIX_WRITABLE
    return CheckpointStoreError(
        f"{path} cannot hold agent checkpoints: {detail}; {fix}", path=str(path)
    )


# --- the translating saver ---------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _thread_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str | None:
    first = args[0] if args else kwargs.get("config", kwargs.get("thread_id"))
    if isinstance(first, Mapping):
        value = (first.get("configurable") or {}).get("thread_id")
        return None if value is None else str(value)
    return None if first is None else str(first)


def _translated(method: F) -> F:
    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except self.store_errors as error:
            raise self.unavailable(error, _thread_of(args, kwargs)) from error

    return wrapper  # type: ignore[return-value]


async def _translated_list(
    saver: Any, items: AsyncIterator[Any], config: Any
) -> AsyncIterator[Any]:
    try:
        while True:
            try:
                item = await anext(items)
            except StopAsyncIteration:
                return
            except saver.store_errors as error:
                raise saver.unavailable(error, _thread_of((config,), {})) from error
            yield item
    finally:
        await items.aclose()  # type: ignore[attr-defined]


class _TranslatingSqliteSaver(AsyncSqliteSaver):
    """``AsyncSqliteSaver`` whose SQLite errors arrive as hybridstack errors."""

    store_errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, conn: Any, *, path: Path, busy_timeout: float) -> None:
        super().__init__(conn)
        self.path = path
        self.busy_timeout = busy_timeout

    def unavailable(self, error: sqlite3.Error, thread_id: str | None) -> Exception:
        detail = describe_sqlite_error(error, busy_timeout=self.busy_timeout)
        return CheckpointUnavailableError(detail, path=str(self.path), thread_id=thread_id)

    async def aclose_store(self) -> None:
        await self.conn.close()

    aget_tuple = _translated(AsyncSqliteSaver.aget_tuple)
    aput = _translated(AsyncSqliteSaver.aput)
    aput_writes = _translated(AsyncSqliteSaver.aput_writes)
    adelete_thread = _translated(AsyncSqliteSaver.adelete_thread)
    aget_delta_channel_history = _translated(AsyncSqliteSaver.aget_delta_channel_history)

    def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return _translated_list(self, super().alist(config, **kwargs), config)


# --- one saver per (event loop, file) -------------------------------------------------------


@dataclass
class _Shared:
    opening: asyncio.Task[Any]
    users: int = 0


# Keyed by loop: the saver's lock and its connection's futures belong to one loop (the
# blocking twins each run on a fresh one).
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, float], _Shared]]
_SHARED = weakref.WeakKeyDictionary()


def prepare_sqlite_file(path: Path, *, busy_timeout: float) -> None:
    """Check that ``path`` can hold checkpoints and switch it to WAL (blocking: run it on a
    worker thread). Raises the hybridstack error for whatever is wrong with the path.

    SQLite itself decides whether a file is SQLite, by a first read that writes nothing.
    Done on a plain ``sqlite3`` connection so that a path SQLite cannot open never
    reaches aiosqlite (whose failed connect leaves its worker thread to finish after
    the event loop may have closed).
    """
    check_checkpoint_path(path, create=True)
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    except sqlite3.Error as error:
        raise store_error(path, error, busy_timeout=busy_timeout) from error
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        # WAL: readers never wait for a writer, and a commit is one append. It is a
        # property of the file, so it holds for every later connection.
        _switch_to_wal(conn, busy_timeout)
    except sqlite3.Error as error:
        raise store_error(path, error, busy_timeout=busy_timeout) from error
    finally:
        conn.close()


def _switch_to_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried on SQLITE_BUSY until ``busy_timeout``: when
    connections switch one fresh file at once, SQLite refuses one of them at once,
    without its busy handler (which could deadlock there)."""
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as error:
            busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _open(path: Path, busy_timeout: float) -> _TranslatingSqliteSaver:
    import aiosqlite

    await asyncio.to_thread(prepare_sqlite_file, path, busy_timeout=busy_timeout)
    try:
        conn = await aiosqlite.connect(str(path), timeout=busy_timeout)
    except sqlite3.Error as error:
        raise store_error(path, error, busy_timeout=busy_timeout) from error
    try:
        saver = _TranslatingSqliteSaver(conn, path=path, busy_timeout=busy_timeout)
        await saver.setup()
    except sqlite3.Error as error:
        await conn.close()
        raise store_error(path, error, busy_timeout=busy_timeout) from error
    except BaseException:
        await conn.close()
        raise
    return saver


def _saver_key(path: str | os.PathLike[str], busy_timeout: float) -> tuple[Path, tuple[str, float]]:
    # abspath, not resolve(): no file-system walk on the loop; a symlinked alias only
    # costs a second connection, which the busy timeout copes with.
    absolute = os.path.abspath(os.path.expanduser(path))
    return Path(absolute), (absolute, float(busy_timeout))


@contextlib.asynccontextmanager
async def shared_sqlite_saver(
    path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S
) -> AsyncIterator[AsyncSqliteSaver]:
    """The process's saver for ``path`` on this event loop, opened on first use and
    closed when its last user leaves."""
    async with shared_saver(path, busy_timeout=busy_timeout) as saver:
        yield saver


@contextlib.asynccontextmanager
async def shared_saver(
    where: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S
) -> AsyncIterator[Any]:
    """The process's saver for ``where`` (an SQLite path or a ``postgresql://`` URL) on
    this event loop, opened on first use and closed when its last user leaves."""
    loop = asyncio.get_running_loop()
    per_loop = _SHARED.setdefault(loop, {})
    if is_postgres_url(where):
        url = str(where)
        key = (url, float(busy_timeout))
        opener: Callable[[], Coroutine[Any, Any, Any]] = functools.partial(
            _open_postgres, url, busy_timeout
        )
    else:
        path, key = _saver_key(where, busy_timeout)
        opener = functools.partial(_open, path, busy_timeout)
    entry = per_loop.get(key)
    if entry is None:
        entry = per_loop[key] = _Shared(loop.create_task(opener()))
    entry.users += 1
    try:
        # shield: one caller giving up must not cancel the open the others wait for.
        yield await asyncio.shield(entry.opening)
    finally:
        entry.users -= 1
        if entry.users == 0:
            if per_loop.get(key) is entry:
                del per_loop[key]
            with contextlib.suppress(Exception):
                saver = await entry.opening
                await saver.aclose_store()


# --- Postgres ------------------------------------------------------------------------------


def postgres_store_error(
    error: Exception, target: PostgresTarget
) -> CheckpointStoreError | CheckpointUnavailableError:
    """The hybridstack error for a failure to open a Postgres checkpoint store."""
    passing, reason = describe_connect_error(error, target)
    if passing:
        return CheckpointUnavailableError(reason, path=target.shown, thread_id=None)
    return CheckpointStoreError(
        f"{target.shown} cannot hold agent checkpoints: {reason}; point checkpoint_path "
        "(CLI: --checkpoints) at a reachable postgresql:// URL",
        path=target.shown,
    )


@functools.cache
def _postgres_classes() -> tuple[type, type]:
    """The translating Postgres saver and the no-pipeline cursor (psycopg imported now)."""
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise CheckpointStoreError(
            "Postgres checkpoints need langgraph-checkpoint-postgres: "
            "pip install 'hybridstack[postgres]'",
            path="postgresql://",
        ) from None
    import psycopg

    class NoPipelineCursor(psycopg.AsyncCursor[Any]):
        """``executemany`` as one statement after another: psycopg would otherwise enter
        pipeline mode for it, which a transaction pooler may not pass through."""

        async def executemany(
            self, query: Any, params_seq: Any, *, returning: bool = False
        ) -> None:
            if returning:
                await super().executemany(query, params_seq, returning=True)
                return
            for params in params_seq:
                await self.execute(query, params)

    class TranslatingPostgresSaver(AsyncPostgresSaver):
        """``AsyncPostgresSaver`` whose psycopg errors arrive as hybridstack errors."""

        store_errors: tuple[type[BaseException], ...] = (psycopg.Error,)

        def __init__(self, pool: Any, *, target: PostgresTarget, busy_timeout: float) -> None:
            super().__init__(pool)
            self.supports_pipeline = False  # a transaction per write instead of a pipeline
            self.target = target
            self.busy_timeout = busy_timeout

        def unavailable(self, error: BaseException, thread_id: str | None) -> Exception:
            detail = " ".join(str(error).split()) or type(error).__name__
            return CheckpointUnavailableError(
                f"Postgres: {detail}", path=self.target.shown, thread_id=thread_id
            )

        async def aclose_store(self) -> None:
            await self.conn.close()

        aget_tuple = _translated(AsyncPostgresSaver.aget_tuple)
        aput = _translated(AsyncPostgresSaver.aput)
        aput_writes = _translated(AsyncPostgresSaver.aput_writes)
        adelete_thread = _translated(AsyncPostgresSaver.adelete_thread)
        aget_delta_channel_history = _translated(AsyncPostgresSaver.aget_delta_channel_history)

        def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
            return _translated_list(self, super().alist(config, **kwargs), config)

    return TranslatingPostgresSaver, NoPipelineCursor


_SETUP_LOCK = "hashtext('hybridstack-checkpoints:' || coalesce(current_schema(), ''))"


async def _open_postgres(url: str, busy_timeout: float) -> Any:
    saver_class, cursor_class = _postgres_classes()
    target = parse_postgres_url(url, what="checkpoint store")
    psycopg = import_psycopg("checkpoint store")
    pool_module = import_pool("checkpoint store")
    from psycopg.rows import dict_row

    kwargs = {**target.connect_kwargs(), "row_factory": dict_row}
    try:
        # A connection of its own first: a precise error for a bad URL, and the tables
        # set up once, under a lock, before any run uses them.
        setup_conn = await psycopg.AsyncConnection.connect(
            target.conninfo, connect_timeout=max(1, round(busy_timeout)), **kwargs
        )
    except psycopg.OperationalError as error:
        raise postgres_store_error(error, target) from None
    try:
        if target.schema is not None:
            async with setup_conn.transaction():
                await setup_conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (f"hybridstack-schema:{target.schema}",),
                )
                await setup_conn.execute(f"CREATE SCHEMA IF NOT EXISTS {target.schema}")
        # Session-level: LangGraph's migrations create indexes CONCURRENTLY, which cannot
        # run inside a transaction.
        await setup_conn.execute(f"SELECT pg_advisory_lock({_SETUP_LOCK})")
        try:
            await saver_class(setup_conn, target=target, busy_timeout=busy_timeout).setup()
        finally:
            await setup_conn.execute(f"SELECT pg_advisory_unlock({_SETUP_LOCK})")
    except psycopg.Error as error:
        raise CheckpointUnavailableError(
            f"setting up the checkpoint tables failed (Postgres: {error})",
            path=target.shown,
            thread_id=None,
        ) from error
    finally:
        await setup_conn.close()
    pool = pool_module.AsyncConnectionPool(
        target.conninfo,
        kwargs={**kwargs, "cursor_factory": cursor_class},
        min_size=1,
        max_size=4,
        timeout=busy_timeout,
        name="hybridstack-checkpoints",
        open=False,
    )
    await pool.open()
    return saver_class(pool, target=target, busy_timeout=busy_timeout)

"""A durable ledger in one SQLite file (standard library ``sqlite3``).

* One column per :class:`~hybridstack.types.Attempt` field (``usage`` split into three
  token columns; ``reasons`` and ``redactions`` as JSON), so that
  ``sqlite3 ledger.db "select jurisdiction, sum(cost_usd) from attempts group by 1"``
  works without Python. The schema comes from numbered migrations
  (:mod:`hybridstack.ledger.migrations`), applied on open; the queries and the row
  codec live in :mod:`hybridstack.ledger.sql`, shared with any other SQL backend.
* WAL journal with ``synchronous=NORMAL``: a writer never blocks readers, so another
  process (the ``hybridstack ledger`` command) can read the file while a run writes it.
  Several processes may write one file: each write waits up to ``timeout_s`` for the
  lock. A record survives a crash of the process; the last ones may be lost on power loss.
* One connection, used by one thread at a time (``check_same_thread=False`` and a
  lock). ``record`` writes through by default — one small transaction: about 60 µs on
  an idle machine, more under disk contention, with rare millisecond pauses when the
  WAL is checkpointed (see ``benchmarks/bench_ledger.py``). ``batch_size=N`` buffers N
  records per transaction instead, flushed also by :meth:`~SQLiteLedger.flush`, by
  every read and by :meth:`~SQLiteLedger.close`; buffered records are lost if the
  process dies and are not seen by other readers until flushed.
* Only the attempt's own fields are written: nothing else reaches the file.

**When a write fails** (disk full, the file locked by another process for longer than
``timeout_s``, a file or filesystem that became read-only, an I/O error), ``record``
does not raise: the attempt is held, counted by :attr:`SQLiteLedger.pending` and retried,
as every SQL ledger does (:mod:`hybridstack.ledger.store`).

**When the file is deleted, moved or replaced while open** (checked before every
write: one ``stat``), writing on would put attempts where no reader can see them.
Instead: a moved file (log rotation) is completed from its journal and a new ledger is
started at the path; a deleted file is restored at its path from the open connection,
with every attempt it held; a file replaced by another one has its attempts saved next
to it (``<name>.orphan-<time>``). Each case is logged as a warning.

The descriptor that tells a deleted file from a moved one is opened ``O_PATH`` (Linux):
closing an ordinary descriptor of a file drops *every* POSIX lock this process holds on
it, SQLite's included, so closing the ledger would let another process take the write
lock under a reader of the same file in this process, or delete its WAL. Where there is
no ``O_PATH``, such a descriptor is kept open (one per file) instead of closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.ledger import migrations as _migrations
from hybridstack.ledger import sql as _sql
from hybridstack.ledger.sql import COLUMNS
from hybridstack.ledger.store import RowRejected, SQLLedger, Unwritable, WriteOne

__all__ = ["COLUMNS", "SQLiteLedger"]

logger = logging.getLogger("hybridstack.ledger")

_WHAT_TO_DO = "move the file aside or point the ledger at another path"

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_AUTH, _SQLITE_NOTADB = 23, 26


#: Errors that belong to one row, not to the file: the rest can still be written.
_ROW_ERRORS = (OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError)


_O_PATH: int | None = getattr(os, "O_PATH", None)
#: Without O_PATH: descriptors of closed ledgers, kept open by (device, inode) and reused.
_PARKED: dict[tuple[int, int], list[int]] = {}
_PARKED_LOCK = threading.Lock()


def _watch(file: Path) -> int:
    """A descriptor to ``fstat`` the ledger file by, that can be let go without costing
    this process's SQLite connections their POSIX locks on the file (see the module docs)."""
    if _O_PATH is not None:
        return os.open(file, _O_PATH)  # closing an O_PATH descriptor releases no locks
    info = os.stat(file)
    with _PARKED_LOCK:
        spares = _PARKED.get((info.st_dev, info.st_ino), [])
        while spares:
            fd = spares.pop()
            kept = os.fstat(fd)
            if (kept.st_dev, kept.st_ino) == (info.st_dev, info.st_ino):
                return fd
    return os.open(file, os.O_RDONLY)


def _unwatch(fd: int) -> None:
    if _O_PATH is not None:
        os.close(fd)
        return
    info = os.fstat(fd)
    with _PARKED_LOCK:  # never closed: that would drop the process's locks on the file
        _PARKED.setdefault((info.st_dev, info.st_ino), []).append(fd)


class SQLiteLedger(SQLLedger):
    """Attempts in an SQLite file that outlives the process and can be read by another one.

    ``create=False`` refuses to make a new file; ``read_only=True`` opens an existing
    ledger for reading only (it must not need a migration). Opening a file that is not
    a hybridstack ledger, is corrupt, is not writable, or was written by a newer
    hybridstack raises :class:`~hybridstack.errors.ConfigurationError` saying what to
    do; a file locked by another process past ``timeout_s`` raises
    :class:`~hybridstack.errors.LedgerError`.

    Writes that fail are held and retried (see the module docs): ``pending`` counts
    them, ``max_pending`` bounds them (``None``: no bound), ``retry_interval_s`` spaces
    the retries that ``record`` makes.
    """

    engine = "SQLite"

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
        batch_size: int = 1,
        timeout_s: float = 5.0,
        max_pending: int | None = 10_000,
        retry_interval_s: float = 1.0,
    ) -> None:
        super().__init__(
            read_only=read_only,
            batch_size=batch_size,
            max_pending=max_pending,
            retry_interval_s=retry_interval_s,
        )
        in_memory = str(path) == ":memory:"
        self.path = Path(path) if not in_memory else None
        # Where the file is, whatever the working directory becomes later.
        self._file = self.path.resolve() if self.path is not None else None
        self.timeout_s = timeout_s
        self._create = create
        self._conn: sqlite3.Connection | None = None
        # An open descriptor on the file, to tell a deleted file (no links left) from a
        # moved one, and the (device, inode) it had when opened.
        self._watch_fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._open(create=create)

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        return f"SQLiteLedger({where!r}{self._repr_extra()})"

    # --- opening -------------------------------------------------------------------

    def _open(self, *, create: bool) -> None:
        """Connect, check and migrate the file, and note its identity."""
        conn = self._connect(create=create)
        if self._file is not None and not self.read_only:
            try:
                fd = _watch(self._file)
            except OSError as exc:
                conn.close()
                raise LedgerError(
                    f"{self._where()} vanished while it was opened ({exc.strerror}); retry",
                    path=str(self.path),
                ) from exc
            info = os.fstat(fd)
            self._watch_fd, self._identity = fd, (info.st_dev, info.st_ino)
        self._conn = conn

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        if self.path is None:
            if self.read_only:
                raise ConfigurationError("an in-memory SQLite ledger cannot be read-only")
            target: str = ":memory:"
            uri = False
        else:
            if self.path.is_dir():
                raise ConfigurationError(
                    f"ledger path {self.path} is a directory: give a file name"
                )
            if not self.path.exists() and (self.read_only or not create):
                raise ConfigurationError(
                    f"no ledger at {self.path}: check the path, or open it with create=True "
                    "(and without read_only) to start a new one"
                )
            if create and not self.read_only:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigurationError(
                        f"cannot create the directory {self.path.parent} for ledger file "
                        f"{self.path} ({exc.strerror}: {exc.filename}): check the path"
                    ) from exc
            mode = "ro" if self.read_only else "rwc"
            target = f"file:{quote(str(self._file))}?mode={mode}"
            uri = True
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                target,
                uri=uri,
                timeout=self.timeout_s,
                isolation_level=None,  # autocommit: transactions are explicit
                check_same_thread=False,  # guarded by self._lock instead
            )
            self._prepare(conn)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise self._open_error(exc) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if app_id != _migrations.APPLICATION_ID:
            if tables or app_id != 0:
                shown = ", ".join(sorted(tables)) or "none"
                raise ConfigurationError(
                    f"{self._where()} is an SQLite database but not a hybridstack ledger "
                    f"(application_id={app_id}, tables: {shown}); {_WHAT_TO_DO}"
                )
            if self.read_only:
                raise ConfigurationError(
                    f"{self._where()} is empty, not a hybridstack ledger yet: "
                    "open it once without read_only to create one"
                )
        try:
            _migrations.check_known(conn)
        except LookupError as exc:
            raise ConfigurationError(
                f"{self._where()} was written by a newer hybridstack (schema migrations "
                f"this version does not know: {exc}); upgrade hybridstack "
                "(pip install -U hybridstack) or use another ledger file"
            ) from None
        if not self.read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrations.migrate(conn)
            # SQLite opens a file it may not write read-only without a word; find out
            # now, with a write that is rolled back, rather than at the first record.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                conn.execute("ROLLBACK")
        elif _migrations.pending(conn):
            raise ConfigurationError(
                f"{self._where()} uses an older ledger schema: open it once without "
                "read_only so that hybridstack can migrate it"
            )
        present = {row[1] for row in conn.execute("PRAGMA table_info(attempts)")}
        missing = [c for c in COLUMNS if c not in present]
        if missing:
            raise ConfigurationError(
                f"{self._where()} is a damaged hybridstack ledger (the attempts table lacks "
                f"{', '.join(missing)}); {_WHAT_TO_DO}"
            )

    def _open_error(self, exc: sqlite3.Error) -> ConfigurationError | LedgerError:
        kind, reason = self._describe(exc)
        if kind == "corrupt":
            return ConfigurationError(
                f"{self._where()} is not a readable hybridstack ledger (not an SQLite "
                f"database, or corrupt: {exc}); {_WHAT_TO_DO}"
            )
        if kind == "unwritable":
            return ConfigurationError(
                f"cannot write {self._where()}: {reason}. Make it writable or choose "
                "another path; to only read it, open it with read_only=True"
            )
        return LedgerError(f"cannot open {self._where()}: {reason}", path=self._location())

    def _describe(self, exc: sqlite3.Error) -> tuple[str, str]:
        """``(kind, reason)`` of an SQLite error: what happened, in words that say what to fix."""
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary == _SQLITE_FULL or "full" in text:
            return "full", f"the disk or database is full ({text}); free some space"
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text:
            return "locked", (
                f"the file is locked by another connection or process for longer than "
                f"timeout_s={self.timeout_s:g}s ({text})"
            )
        if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_AUTH, _SQLITE_CANTOPEN):
            return "unwritable", self._unwritable_reason(text)
        if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or type(exc) is sqlite3.DatabaseError:
            return "corrupt", f"the file is corrupt ({text}); {_WHAT_TO_DO}"
        if primary == _SQLITE_IOERR:
            return "io", (
                f"a disk I/O error ({text}): the file or its directory may have become "
                "unwritable, or the disk failed"
            )
        return "other", text

    def _unwritable_reason(self, text: str) -> str:
        if self.path is None:
            return f"the database is not writable ({text})"
        folder = self.path.parent
        try:
            read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):  # no statvfs on Windows
            read_only_fs = False
        where = (
            f"{folder} is on a read-only filesystem"
            if read_only_fs
            else f"the file or its directory {folder} is not writable (file permissions, "
            "an immutable attribute, or a read-only filesystem)"
        )
        return (
            f"{where} ({text}); besides the file, SQLite's WAL journal needs to create "
            f"{self.path.name}-wal and {self.path.name}-shm in that directory"
        )

    def _where(self) -> str:
        return "the in-memory database" if self.path is None else f"ledger file {self.path}"

    def _location(self) -> str | None:
        return None if self.path is None else str(self.path)

    @property
    def schema(self) -> list[str]:
        """Names of the migrations applied to this file, oldest first."""
        with self._reading():
            return _migrations.applied(self._connection_locked())

    # --- writing (the engine hooks of SQLLedger) -------------------------------------

    def _write_rows_locked(self, rows: Sequence[_sql.Row]) -> None:
        conn = self._writable_connection_locked()
        try:
            if len(rows) == 1:
                conn.execute(self._insert, rows[0])  # autocommit: one implicit transaction
            else:
                # IMMEDIATE takes the write lock first, waiting up to timeout_s for
                # another writer, so the inserts never meet a lock half-way through.
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(self._insert, rows)
                conn.execute("COMMIT")
        except _ROW_ERRORS as exc:
            self._rollback(conn)
            raise RowRejected(str(exc)) from exc
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise Unwritable(self._describe(exc)[1]) from exc

    @contextlib.contextmanager
    def _rows_one_by_one_locked(self) -> Iterator[WriteOne]:
        conn = self._writable_connection_locked()

        def write_one(row: _sql.Row) -> None:
            try:
                conn.execute(self._insert, row)
            except _ROW_ERRORS as exc:
                raise RowRejected(str(exc)) from exc

        try:
            conn.execute("BEGIN IMMEDIATE")
            yield write_one
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise Unwritable(self._describe(exc)[1]) from exc
        except BaseException:
            self._rollback(conn)
            raise

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back (it does on a full disk): ROLLBACK then
        # fails with "cannot rollback", which would hide the real error.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                logger.debug("rollback after a failed write failed too", exc_info=True)

    # --- the file under the connection -------------------------------------------------

    def _writable_connection_locked(self) -> sqlite3.Connection:
        """The connection to write with, after checking the file is still the one opened."""
        conn = self._conn
        if conn is not None and self._same_file():
            return conn
        self._reattach_locked()
        assert self._conn is not None
        return self._conn

    def _same_file(self) -> bool:
        if self._file is None:
            return True
        try:
            info = os.stat(self._file)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    def _reattach_locked(self) -> None:
        """The file was deleted, moved or replaced: keep what it held, then open the path."""
        old = self._conn
        if old is not None:
            self._leave_old_file(old)
        try:
            # A restored file exists again; a moved one is replaced only if create allows.
            self._open(create=self._create)
        except (ConfigurationError, LedgerError) as exc:
            raise Unwritable(str(exc)) from exc

    def _leave_old_file(self, old: sqlite3.Connection) -> None:
        assert self._file is not None
        assert self._watch_fd is not None
        deleted = os.fstat(self._watch_fd).st_nlink == 0
        taken = self._file.exists()
        saved: Path | None = None
        try:
            # Fold the WAL into the old file first: a moved file is then complete, and the
            # -wal left under the old name is empty, so it cannot leak into whatever file
            # takes the name (SQLite's "how to corrupt": a journal that changes hands).
            busy, frames, folded = old.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            complete = not busy and folded == frames
            held = old.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
            if deleted or not complete:
                # The open connection is the last (or the only complete) copy: save it.
                saved = self._orphan_path() if taken or not deleted else self._file
                self._save_copy(old, saved)
        except (sqlite3.Error, OSError) as exc:
            if saved is not None:
                self._partial_path(saved).unlink(missing_ok=True)
            reason = self._describe(exc)[1] if isinstance(exc, sqlite3.Error) else str(exc)
            raise Unwritable(
                f"{self._where()} was {'replaced' if taken else 'deleted or moved'} while "
                f"open, and saving the attempts it held failed ({reason}); the open "
                "connection keeps them and hybridstack tries again"
            ) from exc
        self._conn = None
        old.close()
        _unwatch(self._watch_fd)
        self._watch_fd = self._identity = None
        if not taken:
            # Leftovers of the old file: empty, or (checkpoint incomplete) covered by the
            # saved copy. A new ledger at the path must not adopt them.
            for suffix in ("-wal", "-shm"):
                Path(f"{self._file}{suffix}").unlink(missing_ok=True)
        if saved is not None:
            saved = self._publish(saved)
        if saved == self._file:
            what = (
                "was deleted while open; hybridstack restored it from the open connection "
                f"with the {held} attempts it held, and goes on writing into it"
            )
        elif deleted:
            what = (
                f"was replaced by another file while open; the {held} attempts of the "
                f"replaced file were saved to {saved}, and new attempts go to the file at "
                "the path"
            )
        else:
            what = (
                f"was moved (or renamed) while open; its {held} attempts stay in the moved "
                + (
                    "file, completed from its journal"
                    if saved is None
                    else f"file, which may lack the last of them: all are saved to {saved}"
                )
                + ", and new attempts go to "
                + ("the file now at the path" if taken else "a new ledger at the path")
            )
        logger.warning("%s %s", self._where(), what)

    def _orphan_path(self) -> Path:
        assert self._file is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return self._file.with_name(f"{self._file.name}.orphan-{stamp}")

    def _partial_path(self, target: Path) -> Path:
        return target.with_name(f".{target.name}.{os.getpid()}.partial")

    def _save_copy(self, old: sqlite3.Connection, target: Path) -> None:
        """Copy the database behind ``old`` to a temporary name next to ``target``."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = self._partial_path(target)
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial)
        try:
            old.backup(copy)
        finally:
            copy.close()

    def _publish(self, target: Path) -> Path:
        """Give the saved copy its name; returns where it went.

        Only now, with the old connection and its -wal/-shm gone, may a copy take the
        ledger's own name, and never over a file someone put there meanwhile.
        """
        partial = self._partial_path(target)
        final = self._orphan_path() if target == self._file and target.exists() else target
        os.replace(partial, final)
        return final

    # --- reading and closing (the engine hooks of SQLLedger) ---------------------------

    def _connection_locked(self) -> sqlite3.Connection:
        if self._conn is None:  # pragma: no cover - only while attempts are held
            raise LedgerError(f"{self._where()} is not open: {self._problem}")
        return self._conn

    def _fetch_locked(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._connection_locked()
        try:
            return conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            kind, reason = self._describe(exc)
            if kind == "corrupt":
                raise ConfigurationError(
                    f"{self._where()} is corrupt ({exc}); {_WHAT_TO_DO}"
                ) from exc
            raise LedgerError(
                f"cannot read {self._where()}: {reason}", path=self._location()
            ) from exc

    def _disconnect_locked(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._watch_fd is not None:
            _unwatch(self._watch_fd)
            self._watch_fd = None

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
does not raise — it sits on the executor's hot path and a model call must not fail
because of its bookkeeping. The attempt is *held* in memory instead, counted by
:attr:`SQLiteLedger.pending`, a warning is logged (on the first failure, then each time
the count grows tenfold), and the held attempts are written, in order, by the next
record after ``retry_interval_s``, by :meth:`~SQLiteLedger.flush` and by
:meth:`~SQLiteLedger.close`. While attempts are held, ``flush()`` and every read raise
:class:`~hybridstack.errors.LedgerError` (a read would miss them), and ``close()``
raises one whose ``unwritten`` carries them. Beyond ``max_pending`` the oldest are
dropped, counted by :attr:`~hybridstack.ledger.base.Ledger.dropped` and logged as errors.

**When the file is deleted, moved or replaced while open** (checked before every
write: one ``stat``), writing on would put attempts where no reader can see them.
Instead: a moved file (log rotation) is completed from its journal and a new ledger is
started at the path; a deleted file is restored at its path from the open connection,
with every attempt it held; a file replaced by another one has its attempts saved next
to it (``<name>.orphan-<time>``). Each case is logged as a warning.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.ledger import migrations as _migrations
from hybridstack.ledger import sql as _sql
from hybridstack.ledger.base import GroupBy, Ledger, RunSummary, Totals
from hybridstack.ledger.sql import COLUMNS
from hybridstack.types import Attempt

__all__ = ["COLUMNS", "SQLiteLedger"]

logger = logging.getLogger("hybridstack.ledger")

_INSERT = _sql.insert_sql("?")

_WHAT_TO_DO = "move the file aside or point the ledger at another path"

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_AUTH, _SQLITE_NOTADB = 23, 26


#: Errors that belong to one row, not to the file: the rest can still be written.
_ROW_ERRORS = (OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError)


class _Unwritable(Exception):
    """Internal: the held rows could not be written; ``reason`` says why, for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SQLiteLedger(Ledger):
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
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        if max_pending is not None and max_pending < 1:
            raise ValueError(f"max_pending must be at least 1 or None (got {max_pending})")
        if not (math.isfinite(retry_interval_s) and retry_interval_s >= 0):
            raise ValueError(f"retry_interval_s must be >= 0 seconds (got {retry_interval_s})")
        in_memory = str(path) == ":memory:"
        self.path = Path(path) if not in_memory else None
        # Where the file is, whatever the working directory becomes later.
        self._file = self.path.resolve() if self.path is not None else None
        self.read_only = read_only
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.retry_interval_s = retry_interval_s
        self._create = create
        self._lock = threading.Lock()
        #: Rows recorded but not in the file yet: a batch being filled, or held after a
        #: failed write (then ``_problem`` says why).
        self._buffer: list[_sql.Row] = []
        self._problem: str | None = None
        self._failing_since = 0.0
        self._retry_at = 0.0
        self._warn_at_pending = 0
        self._warn_at_dropped = 0
        self._closed = False
        self._conn: sqlite3.Connection | None = None
        # An open descriptor on the file, to tell a deleted file (no links left) from a
        # moved one, and the (device, inode) it had when opened.
        self._watch_fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._open(create=create)

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        extra = ", read_only=True" if self.read_only else ""
        if self._buffer and self._problem is not None:
            extra += f", pending={len(self._buffer)}"
        if self.dropped:
            extra += f", dropped={self.dropped}"
        return f"SQLiteLedger({where!r}{extra})"

    @property
    def pending(self) -> int:
        """Attempts recorded but not yet in the file (a batch being filled, or held)."""
        return len(self._buffer)

    # --- opening -------------------------------------------------------------------

    def _open(self, *, create: bool) -> None:
        """Connect, check and migrate the file, and note its identity."""
        conn = self._connect(create=create)
        if self._file is not None and not self.read_only:
            try:
                fd = os.open(self._file, os.O_RDONLY)
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
        return LedgerError(f"cannot open {self._where()}: {reason}", path=self._path_text())

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

    def _path_text(self) -> str | None:
        return None if self.path is None else str(self.path)

    @property
    def schema(self) -> list[str]:
        """Names of the migrations applied to this file, oldest first."""
        with self._lock:
            return _migrations.applied(self._readable_locked())

    # --- writing -------------------------------------------------------------------

    def _write(self, attempt: Attempt) -> None:
        row = _sql.to_row(attempt)
        with self._lock:
            if self._closed:
                raise LedgerError(
                    f"{self!r} is closed: it cannot record (attempt {attempt.call_id}"
                    f"/{attempt.attempt_index} is not stored)",
                    path=self._path_text(),
                    unwritten=(attempt,),
                )
            if self.read_only:
                raise ConfigurationError(f"{self!r} was opened read-only: it cannot record")
            self._buffer.append(row)
            if self._problem is None:
                if len(self._buffer) < self.batch_size:
                    return
            elif time.monotonic() < self._retry_at:
                self._bound_pending_locked()
                return
            self._try_flush_locked()

    def flush(self) -> None:
        """Write every buffered or held attempt now.

        Raises :class:`~hybridstack.errors.LedgerError` (with the attempts in
        ``unwritten``) when they still cannot be written; they stay held.
        """
        with self._lock:
            self._require_open_locked()
            if self._buffer:
                reason = self._try_flush_locked()
                if reason is not None:
                    raise self._held_error_locked(
                        f"could not write {len(self._buffer)} attempts", reason
                    )

    def _try_flush_locked(self) -> str | None:
        """Write the buffer; on failure hold it, warn, and return why (else ``None``)."""
        try:
            written = self._flush_locked()
        except _Unwritable as failure:
            self._note_failure_locked(failure.reason)
            return failure.reason
        if self._problem is not None:
            logger.warning(
                "%s: wrote %d held attempts after %.1fs; it is writing again (it could not "
                "because %s)",
                self._where(),
                written,
                time.monotonic() - self._failing_since,
                self._problem,
            )
            self._problem = None
        return None

    def _flush_locked(self) -> int:
        conn = self._writable_connection_locked()
        rows = self._buffer
        try:
            if len(rows) == 1:
                conn.execute(_INSERT, rows[0])  # autocommit: one implicit transaction
            else:
                # IMMEDIATE takes the write lock first, waiting up to timeout_s for
                # another writer, so the inserts never meet a lock half-way through.
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
        except _ROW_ERRORS:
            self._rollback(conn)
            return self._flush_row_by_row_locked(conn)
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _Unwritable(self._describe(exc)[1]) from exc
        self._buffer = []
        return len(rows)

    def _flush_row_by_row_locked(self, conn: sqlite3.Connection) -> int:
        """Write the buffer leaving out the rows SQLite cannot store (each counted, logged).

        Such a row (an integer beyond 64 bits, say) would otherwise fail every flush
        after it, and hold up every attempt recorded later.
        """
        rows, stored = self._buffer, 0
        conn.execute("BEGIN IMMEDIATE")
        for position, row in enumerate(rows):
            try:
                conn.execute(_INSERT, row)
            except _ROW_ERRORS as exc:
                self._count_dropped()
                logger.error(
                    "%s: dropped attempt %s/%s: SQLite cannot store it (%s); %d dropped so "
                    "far (ledger.dropped)",
                    self._where(),
                    row[0],
                    row[2],
                    exc,
                    self.dropped,
                )
                rows[position] = None  # type: ignore[call-overload]
            except sqlite3.Error as exc:
                self._rollback(conn)
                self._buffer = [r for r in rows if r is not None]
                raise _Unwritable(self._describe(exc)[1]) from exc
            else:
                stored += 1
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            self._buffer = [r for r in rows if r is not None]
            raise _Unwritable(self._describe(exc)[1]) from exc
        self._buffer = []
        return stored

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back (it does on a full disk): ROLLBACK then
        # fails with "cannot rollback", which would hide the real error.
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                logger.debug("rollback after a failed write failed too", exc_info=True)

    def _note_failure_locked(self, reason: str) -> None:
        now = time.monotonic()
        first = self._problem is None
        changed = reason != self._problem
        if first:
            self._failing_since = now
            self._warn_at_pending = 0
        self._problem = reason
        self._retry_at = now + self.retry_interval_s
        self._bound_pending_locked()
        held = len(self._buffer)
        if first or changed or held >= self._warn_at_pending:
            # Loud but not a line per record: again each time the count grows tenfold.
            self._warn_at_pending = 10 ** (len(str(held)))
            logger.warning(
                "%s: cannot write (%s); holding %d attempt(s) in memory, counted in "
                "ledger.pending, and retrying every %gs (flush() and close() retry at "
                "once)%s",
                self._where(),
                reason,
                held,
                self.retry_interval_s,
                ""
                if self.max_pending is None
                else f"; beyond {self.max_pending} the oldest are dropped",
            )

    def _bound_pending_locked(self) -> None:
        if self.max_pending is None or len(self._buffer) <= self.max_pending:
            return
        excess = len(self._buffer) - self.max_pending
        del self._buffer[:excess]
        self._count_dropped(excess)
        if self.dropped >= self._warn_at_dropped:
            self._warn_at_dropped = 10 ** (len(str(self.dropped)))
            logger.error(
                "%s: dropped the %d oldest held attempt(s): max_pending=%d were already "
                "held because %s; %d dropped so far (ledger.dropped)",
                self._where(),
                excess,
                self.max_pending,
                self._problem,
                self.dropped,
            )

    def _held_error_locked(
        self, headline: str, reason: str, *, closing: bool = False
    ) -> LedgerError:
        dropped = (
            f"; {self.dropped} more were dropped earlier (ledger.dropped)" if self.dropped else ""
        )
        fate = (
            "The ledger is closed and they are not in the file: this error's .unwritten holds "
            "them (record them into another ledger to keep them)"
            if closing
            else "They are held in memory (ledger.pending) and retried; this error's "
            ".unwritten lists them"
        )
        return LedgerError(
            f"{self._where()}: {headline}: {reason}. {fate}{dropped}",
            path=self._path_text(),
            unwritten=[_sql.from_row(row) for row in self._buffer],
        )

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
            raise _Unwritable(str(exc)) from exc

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
            raise _Unwritable(
                f"{self._where()} was {'replaced' if taken else 'deleted or moved'} while "
                f"open, and saving the attempts it held failed ({reason}); the open "
                "connection keeps them and hybridstack tries again"
            ) from exc
        self._conn = None
        old.close()
        os.close(self._watch_fd)
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

    # --- reading -------------------------------------------------------------------

    def _require_open_locked(self) -> None:
        if self._closed:
            raise LedgerError(f"{self!r} is closed", path=self._path_text())

    def _readable_locked(self) -> sqlite3.Connection:
        """The connection to read with, once every recorded attempt is in the file."""
        self._require_open_locked()
        if self._buffer:
            reason = self._try_flush_locked()
            if reason is not None:
                raise self._held_error_locked(
                    f"{len(self._buffer)} recorded attempts are not written yet, so a read "
                    "would miss them",
                    reason,
                )
        if self._conn is None:  # pragma: no cover - only while attempts are held
            raise LedgerError(f"{self._where()} is not open: {self._problem}")
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._readable_locked()
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                kind, reason = self._describe(exc)
                if kind == "corrupt":
                    raise ConfigurationError(
                        f"{self._where()} is corrupt ({exc}); {_WHAT_TO_DO}"
                    ) from exc
                raise LedgerError(
                    f"cannot read {self._where()}: {reason}", path=self._path_text()
                ) from exc

    def attempts(
        self,
        *,
        call_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Attempt]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        sql, params = _sql.attempts_query(call_id=call_id, run_id=run_id, limit=limit)
        return [_sql.from_row(row) for row in self._query(sql, params)]

    def totals(
        self,
        *,
        run_id: str | None = None,
        call_id: str | None = None,
        by: GroupBy | None = None,
    ) -> dict[str, Totals]:
        sql, params = _sql.totals_query(call_id=call_id, run_id=run_id, by=by)
        return _sql.totals_from_rows(self._query(sql, params))

    def runs(self) -> list[RunSummary]:
        return _sql.runs_from_rows(self._query(_sql.RUNS_QUERY))

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Write what is buffered or held, and close the file. Safe to call twice.

        The file is closed even when the last attempts cannot be written; they are then
        not lost silently: this raises :class:`~hybridstack.errors.LedgerError` whose
        ``unwritten`` carries them (record them into another ledger to keep them).
        """
        error: LedgerError | None = None
        with self._lock:
            if self._closed:
                return
            if self._buffer:
                reason = self._try_flush_locked()
                if reason is not None:
                    error = self._held_error_locked(
                        f"could not write {len(self._buffer)} attempts before closing",
                        reason,
                        closing=True,
                    )
            self._closed = True
            self._buffer = []
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            if self._watch_fd is not None:
                os.close(self._watch_fd)
                self._watch_fd = None
        super().close()
        if error is not None:
            raise error

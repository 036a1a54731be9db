"""What every SQL ledger does the same way: buffer, hold, retry, bound, read back.

:class:`SQLLedger` is the store logic the SQLite and Postgres ledgers share, written once
over a handful of engine hooks (see the class). It owns the rules users rely on:

* ``record`` never raises for the store's sake. A write that fails is *held* in memory,
  counted by :attr:`SQLLedger.pending`, logged as a warning (on the first failure, then
  each time the count grows tenfold), and written, in order, by the next record after
  ``retry_interval_s``, by :meth:`~SQLLedger.flush` and by :meth:`~SQLLedger.close`.
* While attempts are held, ``flush()`` and every read raise
  :class:`~hybridstack.errors.LedgerError` (a read would miss them), and ``close()``
  raises one whose ``unwritten`` carries them. Beyond ``max_pending`` the oldest are
  dropped, counted by :attr:`~hybridstack.ledger.base.Ledger.dropped`, logged as errors.
* A row the engine refuses on its own (an integer beyond 64 bits, a NUL in Postgres
  text) is dropped, counted and logged, and does not hold up the rows around it.
* ``batch_size=N`` buffers N records per transaction, flushed also by ``flush()``, by
  every read and by ``close()``.

The queries and the row codec are in :mod:`hybridstack.ledger.sql`; the schema in
:mod:`hybridstack.ledger.migrations`.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.ledger import sql as _sql
from hybridstack.ledger.base import GroupBy, Ledger, RunSummary, Totals
from hybridstack.types import Attempt

__all__ = ["RowRejected", "SQLLedger", "Unwritable"]

logger = logging.getLogger("hybridstack.ledger")


class Unwritable(Exception):
    """Raised by an engine hook: the store cannot take rows now; ``reason`` is for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RowRejected(Exception):
    """Raised by an engine hook: this row (not the store) cannot be stored."""


#: ``write_one(row)``: one row inside the row-by-row transaction.
WriteOne = Callable[[_sql.Row], None]


class SQLLedger(Ledger):
    """A ledger over an SQL engine. Subclasses provide the engine hooks:

    * ``_write_rows_locked(rows)``: write all ``rows`` in one transaction, or nothing
      (raise :class:`RowRejected` if a row is refused, :class:`Unwritable` otherwise);
    * ``_rows_one_by_one_locked()``: a context manager around one transaction that yields
      ``write_one(row)`` (raising :class:`RowRejected` for that row only, each row
      behind its own savepoint where the engine needs one) and commits on exit;
    * ``_fetch_locked(sql, params)``: run a query, translating the engine's errors;
    * ``_disconnect_locked()``: close the connection(s);
    * ``_where()``: the store in words; ``_location()``: its ``LedgerError.path``.
    """

    #: The DB-API placeholder of the engine's driver.
    param = "?"
    #: What the engine is called in messages ("SQLite", "Postgres").
    engine = "SQL"

    def __init__(
        self,
        *,
        read_only: bool = False,
        batch_size: int = 1,
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
        self.read_only = read_only
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.retry_interval_s = retry_interval_s
        self._lock = threading.Lock()
        #: Rows recorded but not stored yet: a batch being filled, or held after a
        #: failed write (then ``_problem`` says why).
        self._buffer: list[_sql.Row] = []
        self._problem: str | None = None
        self._failing_since = 0.0
        self._retry_at = 0.0
        self._warn_at_pending = 0
        self._warn_at_dropped = 0
        self._closed = False
        self._insert = _sql.insert_sql(self.param)

    @property
    def pending(self) -> int:
        """Attempts recorded but not yet stored (a batch being filled, or held)."""
        return len(self._buffer)

    def _repr_extra(self) -> str:
        extra = ", read_only=True" if self.read_only else ""
        if self._buffer and self._problem is not None:
            extra += f", pending={len(self._buffer)}"
        if self.dropped:
            extra += f", dropped={self.dropped}"
        return extra

    # --- the engine hooks ------------------------------------------------------------

    @abc.abstractmethod
    def _write_rows_locked(self, rows: Sequence[_sql.Row]) -> None: ...

    @abc.abstractmethod
    def _rows_one_by_one_locked(self) -> contextlib.AbstractContextManager[WriteOne]: ...

    @abc.abstractmethod
    def _fetch_locked(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def _disconnect_locked(self) -> None: ...

    @abc.abstractmethod
    def _where(self) -> str: ...

    @abc.abstractmethod
    def _location(self) -> str | None: ...

    # --- writing -------------------------------------------------------------------

    def _write(self, attempt: Attempt) -> None:
        row = _sql.to_row(attempt)
        with self._lock:
            if self._closed:
                raise LedgerError(
                    f"{self!r} is closed: it cannot record (attempt {attempt.call_id}"
                    f"/{attempt.attempt_index} is not stored)",
                    path=self._location(),
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
        except Unwritable as failure:
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
        rows = self._buffer
        try:
            self._write_rows_locked(rows)
        except RowRejected:
            return self._flush_row_by_row_locked()
        self._buffer = []
        return len(rows)

    def _flush_row_by_row_locked(self) -> int:
        """Write the buffer leaving out the rows the engine cannot store (each counted, logged).

        Such a row would otherwise fail every flush after it, and hold up every attempt
        recorded later.
        """
        rows: list[_sql.Row | None] = list(self._buffer)
        stored = 0
        try:
            with self._rows_one_by_one_locked() as write_one:
                for position, row in enumerate(rows):
                    assert row is not None
                    try:
                        write_one(row)
                    except RowRejected as exc:
                        self._count_dropped()
                        logger.error(
                            "%s: dropped attempt %s/%s: %s cannot store it (%s); %d dropped "
                            "so far (ledger.dropped)",
                            self._where(),
                            row[0],
                            row[2],
                            self.engine,
                            exc.__cause__ or exc,
                            self.dropped,
                        )
                        rows[position] = None
                    else:
                        stored += 1
        except Unwritable:
            self._buffer = [r for r in rows if r is not None]
            raise
        self._buffer = []
        return stored

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
            "The ledger is closed and they are not stored: this error's .unwritten holds "
            "them (record them into another ledger to keep them)"
            if closing
            else "They are held in memory (ledger.pending) and retried; this error's "
            ".unwritten lists them"
        )
        return LedgerError(
            f"{self._where()}: {headline}: {reason}. {fate}{dropped}",
            path=self._location(),
            unwritten=[_sql.from_row(row) for row in self._buffer],
        )

    # --- reading -------------------------------------------------------------------

    def _require_open_locked(self) -> None:
        if self._closed:
            raise LedgerError(f"{self!r} is closed", path=self._location())

    def _ready_to_read_locked(self) -> None:
        """Return once every recorded attempt is stored (else raise: a read would miss it)."""
        self._require_open_locked()
        if self._buffer:
            reason = self._try_flush_locked()
            if reason is not None:
                raise self._held_error_locked(
                    f"{len(self._buffer)} recorded attempts are not written yet, so a read "
                    "would miss them",
                    reason,
                )

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._ready_to_read_locked()
            return self._fetch_locked(sql, params)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Hold the lock, with every recorded attempt stored (for reads beyond ``_query``)."""
        with self._lock:
            self._ready_to_read_locked()
            yield

    def attempts(
        self,
        *,
        call_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Attempt]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        sql, params = _sql.attempts_query(
            call_id=call_id, run_id=run_id, limit=limit, param=self.param
        )
        return [_sql.from_row(row) for row in self._query(sql, params)]

    def totals(
        self,
        *,
        run_id: str | None = None,
        call_id: str | None = None,
        by: GroupBy | None = None,
    ) -> dict[str, Totals]:
        sql, params = _sql.totals_query(call_id=call_id, run_id=run_id, by=by, param=self.param)
        return _sql.totals_from_rows(self._query(sql, params))

    def runs(self) -> list[RunSummary]:
        return _sql.runs_from_rows(self._query(_sql.RUNS_QUERY))

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Write what is buffered or held, and close the store. Safe to call twice.

        The store is closed even when the last attempts cannot be written; they are then
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
            self._disconnect_locked()
        super().close()
        if error is not None:
            raise error

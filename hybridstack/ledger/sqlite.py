"""A durable ledger in one SQLite file (standard library ``sqlite3``).

* One column per :class:`~hybridstack.types.Attempt` field (``usage`` split into three
  token columns; ``reasons`` and ``redactions`` as JSON), so that
  ``sqlite3 ledger.db "select jurisdiction, sum(cost_usd) from attempts group by 1"``
  works without Python. The schema comes from numbered migrations
  (:mod:`hybridstack.ledger.migrations`), applied on open.
* WAL journal with ``synchronous=NORMAL``: a writer never blocks readers, so another
  process (the ``hybridstack ledger`` command) can read the file while a run writes it.
  A record survives a crash of the process; the last ones may be lost on power loss.
* One connection, used by one thread at a time (``check_same_thread=False`` and a
  lock). ``record`` writes through by default — one small transaction: about 60 µs on
  an idle machine, more under disk contention, with rare millisecond pauses when the
  WAL is checkpointed (see ``benchmarks/bench_ledger.py``). ``batch_size=N`` buffers N
  records per transaction instead, flushed also by :meth:`~SQLiteLedger.flush`, by
  every read and by :meth:`~SQLiteLedger.close`; buffered records are lost if the
  process dies and are not seen by other readers until flushed.
* Only the attempt's own fields are written: nothing else reaches the file.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hybridstack.errors import ConfigurationError
from hybridstack.ledger import migrations as _migrations
from hybridstack.ledger.base import GroupBy, Ledger, RunSummary, Totals, check_group_by
from hybridstack.types import Attempt, Usage

#: The ``attempts`` columns the ledger writes and reads, in :func:`_to_row` order.
COLUMNS: tuple[str, ...] = (
    "call_id",
    "run_id",
    "attempt_index",
    "retry_index",
    "deployment",
    "family",
    "model",
    "protocol",
    "region",
    "jurisdiction",
    "quota_scope",
    "started_at",
    "ttft_s",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "outcome",
    "error_type",
    "error_message",
    "status",
    "provider_code",
    "request_id",
    "retry_after_s",
    "breaker_state",
    "hedged",
    "streamed",
    "skill",
    "data_class",
    "reasons",
    "redactions",
)

_COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = f"INSERT INTO attempts ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"

_WHAT_TO_DO = "move the file aside or point the ledger at another path"


class SQLiteLedger(Ledger):
    """Attempts in an SQLite file that outlives the process and can be read by another one.

    ``create=False`` refuses to make a new file; ``read_only=True`` opens an existing
    ledger for reading only (it must not need a migration). Opening a file that is not
    a hybridstack ledger, is corrupt, or was written by a newer hybridstack raises
    :class:`~hybridstack.errors.ConfigurationError` saying what to do.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
        batch_size: int = 1,
        timeout_s: float = 5.0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        in_memory = str(path) == ":memory:"
        self.path = Path(path) if not in_memory else None
        self.read_only = read_only
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._buffer: list[tuple[Any, ...]] = []
        self._conn: sqlite3.Connection | None = None
        self._conn = self._connect(path, in_memory=in_memory, create=create, timeout_s=timeout_s)

    def __repr__(self) -> str:
        where = ":memory:" if self.path is None else str(self.path)
        return f"SQLiteLedger({where!r}{', read_only=True' if self.read_only else ''})"

    # --- opening -------------------------------------------------------------------

    def _connect(
        self, path: str | Path, *, in_memory: bool, create: bool, timeout_s: float
    ) -> sqlite3.Connection:
        if in_memory:
            if self.read_only:
                raise ConfigurationError("an in-memory SQLite ledger cannot be read-only")
            target: str = ":memory:"
            uri = False
        else:
            assert self.path is not None
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
                self.path.parent.mkdir(parents=True, exist_ok=True)
            mode = "ro" if self.read_only else "rwc"
            target = f"file:{quote(str(self.path.resolve()))}?mode={mode}"
            uri = True
        conn = sqlite3.connect(
            target,
            uri=uri,
            timeout=timeout_s,
            isolation_level=None,  # autocommit: transactions are explicit
            check_same_thread=False,  # guarded by self._lock instead
        )
        try:
            self._prepare(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigurationError(
                f"{self._where()} is not a readable hybridstack ledger (not an SQLite "
                f"database, or corrupt: {exc}); {_WHAT_TO_DO}"
            ) from exc
        except BaseException:
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

    def _where(self) -> str:
        return "the in-memory database" if self.path is None else f"ledger file {self.path}"

    @property
    def schema(self) -> list[str]:
        """Names of the migrations applied to this file, oldest first."""
        with self._lock:
            return _migrations.applied(self._require_open())

    # --- writing -------------------------------------------------------------------

    def _write(self, attempt: Attempt) -> None:
        row = _to_row(attempt)
        with self._lock:
            conn = self._require_open()
            if self.read_only:
                raise ConfigurationError(f"{self!r} was opened read-only: it cannot record")
            if self.batch_size == 1:
                conn.execute(_INSERT, row)
                return
            self._buffer.append(row)
            if len(self._buffer) >= self.batch_size:
                self._flush_locked(conn)

    def flush(self) -> None:
        with self._lock:
            if self._buffer:
                self._flush_locked(self._require_open())

    def _flush_locked(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT, self._buffer)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise  # the rows stay buffered for the next flush
        self._buffer.clear()

    def _require_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{self!r} is closed")
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._require_open()
            if self._buffer:
                self._flush_locked(conn)
            try:
                return conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if type(exc) is not sqlite3.DatabaseError:
                    raise  # OperationalError (locked, disk I/O …) is not corruption
                raise ConfigurationError(
                    f"{self._where()} is corrupt ({exc}); {_WHAT_TO_DO}"
                ) from exc

    # --- reading -------------------------------------------------------------------

    def attempts(
        self,
        *,
        call_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Attempt]:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        where, params = _where(call_id=call_id, run_id=run_id)
        if limit is None:
            sql = f"SELECT {_COLUMN_LIST} FROM attempts{where} ORDER BY id"
        else:
            sql = (
                f"SELECT {_COLUMN_LIST} FROM (SELECT id, {_COLUMN_LIST} FROM attempts{where} "
                "ORDER BY id DESC LIMIT ?) ORDER BY id"
            )
            params.append(limit)
        return [_from_row(row) for row in self._query(sql, params)]

    def totals(
        self,
        *,
        run_id: str | None = None,
        call_id: str | None = None,
        by: GroupBy | None = None,
    ) -> dict[str, Totals]:
        check_group_by(by)
        where, params = _where(call_id=call_id, run_id=run_id)
        sums = (
            "COUNT(*), "
            "COALESCE(SUM(outcome = 'ok'), 0), "
            "COALESCE(SUM(outcome = 'cancelled'), 0), "
            "COALESCE(SUM(outcome = 'skipped'), 0), "
            "COALESCE(SUM(input_tokens), 0), "
            "COALESCE(SUM(output_tokens), 0), "
            "COALESCE(SUM(cached_input_tokens), 0), "
            "TOTAL(cost_usd), TOTAL(latency_s), COUNT(DISTINCT call_id)"
        )
        if by is None:
            rows = self._query(f"SELECT 'all', {sums} FROM attempts{where}", params)
        else:
            # ``by`` is one of GROUP_BY (checked above): safe to name as a column.
            rows = self._query(
                f"SELECT {by}, {sums} FROM attempts{where} GROUP BY {by} ORDER BY {by}", params
            )
        result: dict[str, Totals] = {}
        for key, count, ok, cancelled, skipped, tin, tout, tcached, cost, latency, calls in rows:
            result[key] = Totals(
                attempts=count,
                ok=ok,
                failed=count - ok - cancelled - skipped,
                cancelled=cancelled,
                skipped=skipped,
                input_tokens=tin,
                output_tokens=tout,
                cached_input_tokens=tcached,
                cost_usd=cost,
                latency_s=latency,
                calls=calls,
            )
        return dict(sorted(result.items()))

    def runs(self) -> list[RunSummary]:
        rows = self._query(
            "SELECT run_id, MIN(started_at), COUNT(*), COUNT(DISTINCT call_id), TOTAL(cost_usd), "
            "COUNT(DISTINCT CASE WHEN outcome = 'ok' THEN call_id END) "
            "FROM attempts WHERE run_id IS NOT NULL GROUP BY run_id"
        )
        summaries = [
            RunSummary(
                run_id=run_id,
                started_at=_parse_time(started),
                attempts=count,
                calls=calls,
                cost_usd=cost,
                ok_calls=ok_calls,
                failed_calls=calls - ok_calls,
            )
            for run_id, started, count, calls, cost, ok_calls in rows
        ]
        summaries.sort(key=lambda s: (s.started_at, s.run_id))
        return summaries

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Flush buffered records and close the file. Safe to call twice."""
        with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    if self._buffer:
                        self._flush_locked(conn)
                finally:
                    self._conn = None
                    conn.close()
        super().close()


# --- rows ----------------------------------------------------------------------------


def _where(*, call_id: str | None, run_id: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if call_id is not None:
        clauses.append("call_id = ?")
        params.append(call_id)
    if run_id is not None:
        clauses.append("run_id = ?")
        params.append(run_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _format_time(moment: datetime) -> str:
    # Fixed width and always UTC, so the text sorts in time order (MIN() in runs()).
    # Ledger.record has already made it UTC; convert only what came another way.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


@functools.lru_cache(maxsize=512)
def _reasons_json(reasons: tuple[str, ...]) -> str:
    # Retries and hedges of one call repeat the plan's reasons: encode them once.
    return json.dumps(list(reasons), ensure_ascii=False)


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _to_row(a: Attempt) -> tuple[Any, ...]:
    usage = a.usage
    return (
        a.call_id,
        a.run_id,
        a.attempt_index,
        a.retry_index,
        a.deployment,
        a.family,
        a.model,
        a.protocol,
        a.region,
        a.jurisdiction,
        a.quota_scope,
        _format_time(a.started_at),
        a.ttft_s,
        a.latency_s,
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        a.cost_usd,
        a.outcome,
        a.error_type,
        a.error_message,
        a.status,
        a.provider_code,
        a.request_id,
        a.retry_after_s,
        a.breaker_state,
        int(a.hedged),
        int(a.streamed),
        a.skill,
        a.data_class,
        _reasons_json(a.reasons) if a.reasons else "[]",
        json.dumps(a.redactions, ensure_ascii=False, sort_keys=True) if a.redactions else "{}",
    )


def _from_row(row: tuple[Any, ...]) -> Attempt:
    (
        call_id,
        run_id,
        attempt_index,
        retry_index,
        deployment,
        family,
        model,
        protocol,
        region,
        jurisdiction,
        quota_scope,
        started_at,
        ttft_s,
        latency_s,
        input_tokens,
        output_tokens,
        cached_input_tokens,
        cost_usd,
        outcome,
        error_type,
        error_message,
        status,
        provider_code,
        request_id,
        retry_after_s,
        breaker_state,
        hedged,
        streamed,
        skill,
        data_class,
        reasons,
        redactions,
    ) = row
    return Attempt(
        call_id=call_id,
        run_id=run_id,
        attempt_index=attempt_index,
        retry_index=retry_index,
        deployment=deployment,
        family=family,
        model=model,
        protocol=protocol,
        region=region,
        jurisdiction=jurisdiction,
        quota_scope=quota_scope,
        started_at=_parse_time(started_at),
        ttft_s=ttft_s,
        latency_s=latency_s,
        usage=Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
        ),
        cost_usd=cost_usd,
        outcome=outcome,
        error_type=error_type,
        error_message=error_message,
        status=status,
        provider_code=provider_code,
        request_id=request_id,
        retry_after_s=retry_after_s,
        breaker_state=breaker_state,
        hedged=bool(hedged),
        streamed=bool(streamed),
        skill=skill,
        data_class=data_class,
        reasons=tuple(json.loads(reasons)),
        redactions=json.loads(redactions),
    )

"""A durable ledger in a Postgres database (psycopg 3 and psycopg_pool), shared by hosts.

The same ``attempts`` table as the SQLite ledger, from the same numbered migrations
(:mod:`hybridstack.ledger.migrations`, with Postgres types: ``BIGINT``, ``DOUBLE
PRECISION``, an identity column), read with the same queries (:mod:`hybridstack.ledger.sql`),
so ``psql -c "select jurisdiction, sum(cost_usd) from attempts group by 1"`` works as it
does on the file. Many processes on many hosts may write one ledger.

* Selected by URL: ``PostgresLedger("postgresql://user@host/db?schema=hybridstack")``,
  ``Stack(ledger="postgresql://...")``, ``[ledger] path = "postgresql://..."`` in
  ``hybridstack.toml`` or ``--ledger postgresql://...`` (see :mod:`hybridstack._postgres`
  for the URL, the ``schema`` parameter and what makes it safe behind a pooler).
* One pooled connection, used by one thread at a time (a lock). ``record`` writes through
  by default: one ``INSERT`` in autocommit, one round trip to the server on the calling
  thread. Over a network, ``batch_size=N`` sends N records per transaction (one
  ``COPY``, never pipeline mode) and is the better choice.
* When a write fails (the server is down or restarting, the network is cut, the table
  was dropped) ``record`` does not raise: the attempt is held, counted and retried, as
  every SQL ledger does (:mod:`hybridstack.ledger.store`). While failing, a write waits at
  most a fraction of a second for the pool, which reconnects in the background.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from hybridstack._postgres import (
    create_schema,
    describe_connect_error,
    import_pool,
    import_psycopg,
    parse_postgres_url,
)
from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.ledger import migrations as _migrations
from hybridstack.ledger import sql as _sql
from hybridstack.ledger.store import RowRejected, SQLLedger, Unwritable, WriteOne

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresLedger"]

logger = logging.getLogger("hybridstack.ledger")

#: How long a write waits for a pooled connection while the ledger is failing.
_FAILING_CHECKOUT_S = 0.2
_WHAT_TO_DO = "use another schema (postgresql://…?schema=NAME) or another database"


class PostgresLedger(SQLLedger):
    """Attempts in a Postgres table that every process and host with the URL can read.

    ``schema`` (or ``?schema=`` in the URL) keeps the ledger's tables in that schema,
    created if missing. ``create=False`` refuses to make new tables; ``read_only=True``
    only reads (the schema must not need a migration). A URL that is wrong (no such
    database or user, bad password), tables that are not a hybridstack ledger, or a
    schema written by a newer hybridstack raise
    :class:`~hybridstack.errors.ConfigurationError`; a server that cannot be reached
    within ``timeout_s`` raises :class:`~hybridstack.errors.LedgerError`.

    Writes that fail are held and retried (see :mod:`hybridstack.ledger.store`):
    ``pending``, ``max_pending`` and ``retry_interval_s`` as for the SQLite ledger.
    """

    param = "%s"
    engine = "Postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
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
        if not (timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0 seconds (got {timeout_s})")
        self.target = parse_postgres_url(url, schema=schema, what="ledger")
        self.url = self.target.shown
        self.timeout_s = timeout_s
        self._psycopg = import_psycopg("ledger")
        self._pool: Any = None
        self._open(create=create)

    def __repr__(self) -> str:
        return f"PostgresLedger({self.url!r}{self._repr_extra()})"

    def _where(self) -> str:
        return f"Postgres ledger {self.url}"

    def _location(self) -> str | None:
        return self.url

    @property
    def schema(self) -> list[str]:
        """Names of the migrations applied to this ledger, oldest first."""
        with self._reading(), self._connection() as conn:
            return _migrations.applied(conn)

    # --- opening -------------------------------------------------------------------

    def _open(self, *, create: bool) -> None:
        """Check and migrate the tables on a connection of its own, then start the pool."""
        pool_module = import_pool("ledger")
        kwargs = self.target.connect_kwargs()
        try:
            conn = self._psycopg.connect(
                self.target.conninfo, connect_timeout=max(1, round(self.timeout_s)), **kwargs
            )
        except self._psycopg.OperationalError as exc:
            passing, reason = describe_connect_error(exc, self.target)
            if passing:
                raise LedgerError(f"cannot open {self._where()}: {reason}", path=self.url) from None
            raise ConfigurationError(f"cannot open {self._where()}: {reason}") from None
        try:
            self._prepare(conn, create=create)
        except self._psycopg.Error as exc:
            raise LedgerError(
                f"cannot open {self._where()}: {self._describe(exc)}", path=self.url
            ) from exc
        finally:
            conn.close()
        self._pool = pool_module.ConnectionPool(
            self.target.conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=1,  # one thread at a time uses the ledger (self._lock)
            timeout=self.timeout_s,
            name="hybridstack-ledger",
            open=True,
        )

    def _prepare(self, conn: psycopg.Connection[Any], *, create: bool) -> None:
        db = _migrations.schema_connection(conn)
        if self.target.schema is not None and create and not self.read_only:
            create_schema(conn, self.target.schema)
        has_attempts = db.has_table("attempts")
        has_migrations = _migrations.has_migrations_table(db)
        if has_attempts and not has_migrations:
            raise ConfigurationError(
                f"{self._where()}: the schema already has an attempts table that is not a "
                f"hybridstack ledger (no _migrations table); {_WHAT_TO_DO}"
            )
        if not has_attempts and (self.read_only or not create):
            raise ConfigurationError(
                f"no ledger at {self.url}: check the URL and schema, or open it with "
                "create=True (and without read_only) to start a new one"
            )
        try:
            _migrations.check_known(db)
        except LookupError as exc:
            raise ConfigurationError(
                f"{self._where()} was written by a newer hybridstack (schema migrations this "
                f"version does not know: {exc}); upgrade hybridstack (pip install -U "
                "hybridstack) or use another schema"
            ) from None
        if not self.read_only:
            _migrations.migrate(db)
        elif _migrations.pending(db):
            raise ConfigurationError(
                f"{self._where()} uses an older ledger schema: open it once without "
                "read_only so that hybridstack can migrate it"
            )
        present = {
            row[0]
            for row in db.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('attempts') "
                "AND attnum > 0 AND NOT attisdropped"
            )
        }
        missing = [c for c in _sql.COLUMNS if c not in present]
        if missing:
            raise ConfigurationError(
                f"{self._where()} is a damaged hybridstack ledger (the attempts table lacks "
                f"{', '.join(missing)}); {_WHAT_TO_DO}"
            )

    def _describe(self, exc: BaseException) -> str:
        """What a psycopg error means for the ledger, in words that say what to fix."""
        from psycopg_pool import PoolTimeout

        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, PoolTimeout):
            return (
                f"no connection to the server ({text}): it is down, restarting or unreachable; "
                "the pool keeps reconnecting"
            )
        if isinstance(exc, self._psycopg.OperationalError | self._psycopg.InterfaceError):
            return f"the connection to the server failed ({text})"
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate == "42P01":  # undefined_table
            return f"the attempts table is gone ({text}); {_WHAT_TO_DO}"
        if sqlstate.startswith("53"):  # insufficient resources: disk full, out of memory
            return f"the server is out of resources ({text}); free some space"
        return text

    # --- the engine hooks of SQLLedger ----------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        timeout = (
            self.timeout_s if self._problem is None else min(self.timeout_s, _FAILING_CHECKOUT_S)
        )
        with self._pool.connection(timeout=timeout) as conn:
            yield conn

    def _row_errors(self) -> tuple[type[BaseException], ...]:
        # Errors that belong to one row (a number beyond BIGINT, a NUL in a text), not
        # to the store: the rest can still be written.
        return (self._psycopg.DataError, self._psycopg.IntegrityError)

    def _write_rows_locked(self, rows: Sequence[_sql.Row]) -> None:
        try:
            with self._connection() as conn:
                if len(rows) == 1:
                    conn.execute(self._insert, rows[0])
                    return
                # COPY: one statement for the batch, whose text psycopg need not parse per
                # row (a multi-row INSERT costs ~100 µs a row in psycopg's query parser);
                # PgBouncer passes it through, and it is not pipeline mode.
                with conn.transaction(), conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                    for row in rows:
                        copy.write_row(row)
        except self._row_errors() as exc:
            raise RowRejected(str(exc)) from exc
        except self._psycopg.Error as exc:
            raise Unwritable(self._describe(exc)) from exc

    @contextlib.contextmanager
    def _rows_one_by_one_locked(self) -> Iterator[WriteOne]:
        row_errors = self._row_errors()
        try:
            with self._connection() as conn, conn.transaction():

                def write_one(row: _sql.Row) -> None:
                    try:
                        with conn.transaction():  # a savepoint: a refused row leaves the rest
                            conn.execute(self._insert, row)
                    except row_errors as exc:
                        raise RowRejected(str(exc)) from exc

                yield write_one
        except self._psycopg.Error as exc:
            raise Unwritable(self._describe(exc)) from exc

    def _fetch_locked(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._connection() as conn:
                return conn.execute(sql, tuple(params)).fetchall()
        except self._psycopg.Error as exc:
            raise LedgerError(
                f"cannot read {self._where()}: {self._describe(exc)}", path=self.url
            ) from exc

    def _disconnect_locked(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


_COPY = f"COPY attempts ({_sql.COLUMN_LIST}) FROM STDIN"

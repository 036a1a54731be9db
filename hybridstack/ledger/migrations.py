"""Numbered schema migrations for the SQLite ledger.

The pattern of simonw/llm's ``llm/migrations.py``: each migration is a function named
``mNNN_what_it_does`` registered, in order, with :func:`migration`. :func:`migrate`
applies the ones a database has not seen yet and records each in
``_migrations(name, applied_at)``, so reopening a ledger is a no-op and an old file is
brought forward on open.

Rules for whoever adds a migration:

* never edit or reorder a released migration: add a new one at the end;
* a migration only adds (tables, columns with defaults, indexes), so that an older
  hybridstack that meets a newer file fails loudly (see :func:`check_known`) instead of
  misreading it.

Besides ``_migrations``, the file header carries ``PRAGMA application_id`` (which marks
the file as a hybridstack ledger) and ``PRAGMA user_version`` (the number of the last
applied migration), so ``sqlite3 ledger.db 'pragma user_version'`` tells the schema
version without Python.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

#: ``PRAGMA application_id`` of every hybridstack ledger: ASCII "HYBL".
APPLICATION_ID = 0x4859424C

MIGRATIONS_TABLE = "_migrations"

Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = []

_NAME = re.compile(r"^m(\d{3})_[a-z0-9_]+$")


def migration(fn: Migration) -> Migration:
    """Register ``fn`` as the next migration; its number must follow the last one."""
    number = migration_number(fn.__name__)
    expected = len(MIGRATIONS) + 1
    if number != expected:
        raise ValueError(f"migration {fn.__name__} should be numbered m{expected:03d}_…")
    MIGRATIONS.append(fn)
    return fn


def migration_number(name: str) -> int:
    match = _NAME.match(name)
    if match is None:
        raise ValueError(f"migration names look like m001_create_attempts, not {name!r}")
    return int(match.group(1))


@migration
def m001_create_attempts(db: sqlite3.Connection) -> None:
    # One column per Attempt field (usage is split in three), so that people can
    # aggregate with plain SQL; only the two container fields are JSON.
    db.execute(
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,              -- recording order
            call_id TEXT NOT NULL,
            run_id TEXT,
            attempt_index INTEGER NOT NULL DEFAULT 0,
            retry_index INTEGER NOT NULL DEFAULT 0,
            deployment TEXT NOT NULL,
            family TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            protocol TEXT NOT NULL DEFAULT '',
            region TEXT NOT NULL DEFAULT '',
            jurisdiction TEXT NOT NULL DEFAULT '',
            quota_scope TEXT NOT NULL DEFAULT '',
            started_at TEXT NOT NULL,            -- ISO 8601, UTC, microseconds
            ttft_s REAL,
            latency_s REAL NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_input_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            error_type TEXT,
            error_message TEXT,
            status INTEGER,
            provider_code TEXT,
            request_id TEXT,
            retry_after_s REAL,
            breaker_state TEXT NOT NULL DEFAULT 'closed',
            hedged INTEGER NOT NULL DEFAULT 0,
            streamed INTEGER NOT NULL DEFAULT 0,
            skill TEXT,
            data_class TEXT,
            reasons TEXT NOT NULL DEFAULT '[]',      -- JSON list of strings
            redactions TEXT NOT NULL DEFAULT '{}'    -- JSON object kind -> count
        )
        """
    )
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


@migration
def m002_attempt_indexes(db: sqlite3.Connection) -> None:
    # Lookups by call and run must not scan the table; runs() groups by run_id.
    db.execute("CREATE INDEX attempts_call_id ON attempts (call_id)")
    db.execute("CREATE INDEX attempts_run_id ON attempts (run_id, started_at)")
    db.execute("CREATE INDEX attempts_started_at ON attempts (started_at)")


@migration
def m003_usage_estimated(db: sqlite3.Connection) -> None:
    # 1 when the provider reported no usage (a llama.cpp stream without a usage frame)
    # and the row's token counts and cost are hybridstack's estimate.
    db.execute("ALTER TABLE attempts ADD COLUMN usage_estimated INTEGER NOT NULL DEFAULT 0")


def ensure_migrations_table(db: sqlite3.Connection) -> None:
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
        "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )


def has_migrations_table(db: sqlite3.Connection) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
    ).fetchone()
    return row is not None


def applied(db: sqlite3.Connection) -> list[str]:
    """Names of the migrations already applied to ``db``, oldest first."""
    if not has_migrations_table(db):
        return []
    rows = db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY name").fetchall()
    return [row[0] for row in rows]


def pending(db: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> list[str]:
    done = set(applied(db))
    return [fn.__name__ for fn in _list(migrations) if fn.__name__ not in done]


def check_known(db: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> None:
    """Raise ``LookupError`` naming migrations this hybridstack does not know (a newer file)."""
    known = {fn.__name__ for fn in _list(migrations)}
    unknown = [name for name in applied(db) if name not in known]
    if unknown:
        raise LookupError(", ".join(unknown))


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply the pending migrations in order, in one transaction; return their names.

    ``db`` must be in autocommit mode (``isolation_level=None``). Two processes opening
    a fresh file at once are serialised by ``BEGIN IMMEDIATE``; the second one finds
    nothing left to do.
    """
    migrations = _list(migrations)
    if not pending(db, migrations):
        return []
    db.execute("BEGIN IMMEDIATE")
    try:
        ensure_migrations_table(db)
        done = set(applied(db))
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        newly: list[str] = []
        for fn in migrations:
            if fn.__name__ in done:
                continue
            fn(db)
            db.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                (fn.__name__, now),
            )
            newly.append(fn.__name__)
        last = max((migration_number(n) for n in done | set(newly)), default=0)
        db.execute(f"PRAGMA user_version = {last}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return newly


def _list(migrations: Sequence[Migration] | None) -> Sequence[Migration]:
    return MIGRATIONS if migrations is None else migrations

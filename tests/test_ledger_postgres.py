"""The Postgres ledger on the real server: same migrations and queries as SQLite, and the
same promise when the store fails (held, counted, retried; never a silent loss).

Every failure is real, none is mocked: the attempts table renamed away under an open
ledger (what a botched migration by hand does), the ledger's server connection killed
with ``pg_terminate_backend``, rows Postgres refuses, a server that is not there, and two
processes writing (and creating) one ledger at once.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_fixtures import SERVER, admin
from test_ledger import full_attempt

from hybridstack.errors import ConfigurationError, LedgerError
from hybridstack.ledger import PostgresLedger, SQLiteLedger, open_ledger
from hybridstack.ledger import migrations as mig
from hybridstack.types import Attempt, Usage

ROOT = Path(__file__).resolve().parents[1]


def rows_in(schema: str) -> list[int]:
    with admin() as conn:
        return [
            r[0] for r in conn.execute(f"SELECT attempt_index FROM {schema}.attempts ORDER BY id")
        ]


def attempts(n: int, start: int = 0) -> list[Attempt]:
    return [full_attempt(attempt_index=i) for i in range(start, start + n)]


def ledger_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hybridstack.ledger" and r.levelno >= logging.WARNING
    ]


@pytest.fixture
def table_away(pg_schema: str) -> Iterator[object]:
    """``with table_away():`` the attempts table is renamed away, then back."""
    import contextlib

    @contextlib.contextmanager
    def away() -> Iterator[None]:
        with admin() as conn:
            conn.execute(f"ALTER TABLE {pg_schema}.attempts RENAME TO attempts_away")
        try:
            yield
        finally:
            with admin() as conn:
                conn.execute(f"ALTER TABLE {pg_schema}.attempts_away RENAME TO attempts")

    return away


# --- opening, migrations ----------------------------------------------------------------


def test_durable_reopen_read_only_and_create_false(pg_url: str) -> None:
    a = full_attempt()
    with open_ledger(pg_url) as first:
        assert isinstance(first, PostgresLedger)
        first.record(a)
    with PostgresLedger(pg_url, create=False) as again:
        assert again.attempts() == [a]
    with PostgresLedger(pg_url, read_only=True) as reader:
        assert reader.attempts() == [a]
        with pytest.raises(ConfigurationError, match="read-only"):
            reader.record(a)


def test_the_same_numbered_migrations_as_sqlite(pg_url: str, pg_schema: str, tmp_path) -> None:
    with PostgresLedger(pg_url) as ledger:
        names = ledger.schema
        ledger.record(full_attempt())
    with SQLiteLedger(tmp_path / "l.db") as sqlite_ledger:
        assert names == sqlite_ledger.schema == [fn.__name__ for fn in mig.MIGRATIONS]
    with admin() as conn:
        first = conn.execute(f"SELECT name, applied_at FROM {pg_schema}._migrations").fetchall()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'attempts'",
                (pg_schema,),
            ).fetchall()
        )
    # 64-bit integers and doubles, as in SQLite (Postgres INTEGER/REAL are 32-bit).
    assert types["input_tokens"] == types["id"] == "bigint"
    assert types["cost_usd"] == "double precision"
    for _ in range(2):
        with PostgresLedger(pg_url) as ledger:
            assert len(ledger.attempts()) == 1
    with admin() as conn:
        again = conn.execute(f"SELECT name, applied_at FROM {pg_schema}._migrations").fetchall()
    assert again == first  # nothing re-applied


def test_an_old_schema_is_migrated_forward_and_read_only_refuses_it(
    pg_url: str, pg_schema: str
) -> None:
    with admin() as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"SET search_path = {pg_schema}")
        assert mig.migrate(conn, mig.MIGRATIONS[:1]) == ["m001_create_attempts"]
    with pytest.raises(ConfigurationError, match="without read_only"):
        PostgresLedger(pg_url, read_only=True)
    with PostgresLedger(pg_url) as ledger:
        assert ledger.schema == [fn.__name__ for fn in mig.MIGRATIONS]


def test_a_portable_migration_runs_on_postgres_and_a_failed_one_rolls_back(
    pg_schema: str,
) -> None:
    # Numbered after the released migrations, whatever their count.
    add_note_name = f"m{len(mig.MIGRATIONS) + 1:03d}_add_note"
    broken_name = f"m{len(mig.MIGRATIONS) + 2:03d}_broken"

    def add_note(db: mig.SchemaConnection) -> None:
        db.execute("ALTER TABLE attempts ADD COLUMN note TEXT NOT NULL DEFAULT ''")

    def broken(db: mig.SchemaConnection) -> None:
        db.execute("CREATE TABLE half_done (x TEXT)")
        raise RuntimeError("boom")

    add_note.__name__ = add_note_name
    broken.__name__ = broken_name
    with admin() as conn:
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"SET search_path = {pg_schema}")
        assert mig.migrate(conn) == [m.__name__ for m in mig.MIGRATIONS]
        assert mig.migrate(conn, [*mig.MIGRATIONS, add_note]) == [add_note_name]
        assert mig.migrate(conn, [*mig.MIGRATIONS, add_note]) == []
        with pytest.raises(RuntimeError, match="boom"):
            mig.migrate(conn, [*mig.MIGRATIONS, add_note, broken])
        assert mig.applied(conn)[-1] == add_note_name
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_newer_schema_and_foreign_tables_are_refused(pg_url: str, pg_schema: str) -> None:
    PostgresLedger(pg_url).close()
    with admin() as conn:
        conn.execute(f"INSERT INTO {pg_schema}._migrations VALUES ('m999_future', 'x')")
    with pytest.raises(ConfigurationError, match="newer hybridstack"):
        PostgresLedger(pg_url)
    with admin() as conn:
        conn.execute(f"DROP TABLE {pg_schema}._migrations")
    with pytest.raises(ConfigurationError, match="not a hybridstack ledger"):
        PostgresLedger(pg_url)


def test_no_ledger_without_create(pg_url: str) -> None:
    for options in ({"create": False}, {"read_only": True}):
        with pytest.raises(ConfigurationError, match="no ledger at"):
            PostgresLedger(pg_url, **options)


def test_bad_urls_say_what_to_fix_and_never_show_the_password() -> None:
    secret = "hunter2-not-shown"
    with pytest.raises(LedgerError, match="cannot reach the Postgres server") as caught:
        PostgresLedger(f"postgresql://postgres:{secret}@127.0.0.1:1/test", timeout_s=2)
    assert secret not in str(caught.value)
    assert secret not in str(caught.value.path)
    with pytest.raises(ConfigurationError, match="schema name"):
        PostgresLedger(f"{SERVER}?schema=Robert'); DROP TABLE x;--")
    with pytest.raises(ConfigurationError, match="not a valid Postgres URL") as bad:
        PostgresLedger(f"postgresql://postgres:{secret}@127.0.0.1/test?nonsense=1")
    assert secret not in str(bad.value)


def test_wrong_database_is_a_configuration_error(pg_schema: str) -> None:
    base = SERVER.rsplit("/", 1)[0]
    with pytest.raises(ConfigurationError, match="check the user, password and database"):
        PostgresLedger(f"{base}/no_such_db_{pg_schema}")


def test_repr_has_no_password(pg_schema: str) -> None:
    url = SERVER.replace("postgres@", "postgres:s3cret-pw@") + f"?schema={pg_schema}"
    with PostgresLedger(url) as ledger:
        assert "s3cret" not in repr(ledger)
        assert "s3cret" not in repr(ledger.target)
        assert pg_schema in repr(ledger)


# --- the store failing --------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 50])
def test_unwritable_table_holds_every_attempt_and_writes_them_later(
    pg_url: str, pg_schema: str, table_away, batch_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = PostgresLedger(pg_url, batch_size=batch_size)
    data = attempts(120)
    with caplog.at_level(logging.WARNING, logger="hybridstack.ledger"), table_away():
        for a in data:
            ledger.record(a)  # never raises
        assert ledger.pending == 120
        assert ledger.dropped == 0
        with pytest.raises(LedgerError, match="attempts table is gone") as caught:
            ledger.flush()
        assert list(caught.value.unwritten) == data
        with pytest.raises(LedgerError, match="not written"):
            ledger.totals()
    warned = ledger_warnings(caplog)
    assert 1 <= len(warned) <= 4
    assert "pending" in warned[0]
    ledger.flush()
    assert ledger.pending == 0
    ledger.close()
    assert rows_in(pg_schema) == list(range(120))


def test_close_raises_with_the_unwritten_attempts_and_max_pending_bounds_them(
    pg_url: str, table_away
) -> None:
    ledger = PostgresLedger(pg_url, max_pending=10)
    with table_away():
        for a in attempts(40):
            ledger.record(a)
        assert ledger.pending == 10
        assert ledger.dropped == 30
        with pytest.raises(LedgerError, match="30 more were dropped") as caught:
            ledger.close()
    assert [a.attempt_index for a in caught.value.unwritten] == list(range(30, 40))
    with pytest.raises(LedgerError, match="closed"):
        ledger.record(full_attempt())


def test_a_killed_server_connection_loses_nothing(pg_url: str, pg_schema: str) -> None:
    ledger = PostgresLedger(pg_url, retry_interval_s=0.0)
    for a in attempts(3):
        ledger.record(a)
    with ledger._pool.connection() as own:  # the one pooled connection the ledger uses
        pid = own.info.backend_pid
    with admin() as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    for a in attempts(3, start=3):
        ledger.record(a)
    for _ in range(100):  # the pool reconnects in the background; held ones go then
        if ledger.pending == 0:
            break
        try:
            ledger.flush()
        except LedgerError:
            continue
    assert ledger.pending == 0
    assert ledger.dropped == 0
    ledger.close()
    assert rows_in(pg_schema) == list(range(6))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_row_postgres_refuses_does_not_hold_up_the_rest(
    pg_url: str, pg_schema: str, batch_size: int, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = PostgresLedger(pg_url, batch_size=batch_size)
    refused = [
        full_attempt(attempt_index=1, usage=Usage(input_tokens=10**30)),  # beyond BIGINT
        full_attempt(attempt_index=2, error_message="a NUL \x00 in text"),  # SQLite takes it
    ]
    with caplog.at_level(logging.ERROR, logger="hybridstack.ledger"):
        for a in (full_attempt(attempt_index=0), *refused, full_attempt(attempt_index=3)):
            ledger.record(a)
        ledger.flush()
    assert ledger.dropped == 2
    assert ledger.pending == 0
    assert "Postgres cannot store" in caplog.records[0].getMessage()
    ledger.record(full_attempt(attempt_index=4))
    ledger.close()
    assert rows_in(pg_schema) == [0, 3, 4]


async def test_a_call_succeeds_while_its_postgres_ledger_cannot_write(
    pg_url: str, pg_schema: str, table_away, caplog: pytest.LogCaptureFixture
) -> None:
    from hybridstack.testing import offline_stack

    ledger = PostgresLedger(pg_url)
    with caplog.at_level(logging.WARNING, logger="hybridstack"), table_away():
        async with offline_stack(policy="cheapest", ledger=ledger, run_id="r") as stack:
            reply = await stack.complete("Hello", model="qwen-plus")
        assert reply.text
        assert ledger.pending == reply.attempts
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    ledger.close()
    assert len(rows_in(pg_schema)) == reply.attempts


def test_two_processes_create_and_write_one_ledger(pg_url: str, pg_schema: str) -> None:
    writer = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from hybridstack.ledger import open_ledger
        from hybridstack.types import Attempt
        base, batch = int(sys.argv[2]), int(sys.argv[3])
        with open_ledger(sys.argv[1], batch_size=batch) as ledger:
            for i in range(base, base + 200):
                ledger.record(Attempt(call_id=f"c{i}", attempt_index=i, deployment="d",
                                      family="f", started_at=datetime.now(UTC), outcome="ok"))
            ledger.flush()
            assert ledger.pending == 0 and ledger.dropped == 0
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [  # neither finds the schema: both migrate it, one after the other
        subprocess.Popen(
            [sys.executable, "-c", writer, pg_url, str(base), str(batch)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for base, batch in ((0, 1), (1000, 7))
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(rows_in(pg_schema)) == [*range(200), *range(1000, 1200)]
    with admin() as conn:
        names = [r[0] for r in conn.execute(f"SELECT name FROM {pg_schema}._migrations")]
    assert sorted(names) == [fn.__name__ for fn in mig.MIGRATIONS]


def test_psycopg_is_imported_lazily() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, hybridstack, hybridstack.ledger; print('psycopg' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"


# --- selected by URL: config, Stack, CLI -------------------------------------------------


def test_config_stack_and_cli_select_the_postgres_ledger_by_url(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from hybridstack.cli import main
    from hybridstack.config import load_config
    from hybridstack.stack import Stack

    config_file = tmp_path / "hybridstack.toml"
    config_file.write_text(f'ledger = "{pg_url}"\ncheckpoints = "{pg_url}"\n')
    config = load_config(config_file)
    assert config.checkpoint_location() == pg_url
    with config.build_ledger() as ledger:
        assert isinstance(ledger, PostgresLedger)
        ledger.record(full_attempt())
    (tmp_path / "table.toml").write_text(f'[ledger]\npath = "{pg_url}"\n')
    assert load_config(tmp_path / "table.toml").ledger_location() == pg_url

    async def through_a_stack() -> None:
        stack = Stack(ledger=pg_url)
        assert isinstance(stack.ledger, PostgresLedger)
        stack.ledger.record(full_attempt(attempt_index=1))
        await stack.aclose()
        with pytest.raises(LedgerError, match="closed"):
            stack.ledger.attempts()

    import asyncio

    asyncio.run(through_a_stack())
    assert main(["ledger", "--ledger", pg_url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["totals"]["attempts"] == 2
    assert "password" not in shown["path"]

"""The real Postgres at 127.0.0.1:5432 (database ``test``), one fresh schema per test.

Import the fixtures into a test module (``from postgres_fixtures import pg_url``). A test
that needs the server is skipped, with the reason, only when no server answers;
``HYBRIDSTACK_TEST_POSTGRES`` points the tests at another server.
"""

from __future__ import annotations

import functools
import itertools
import os
import uuid
from collections.abc import Iterator

import pytest

SERVER = os.environ.get("HYBRIDSTACK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
#: Unique per test session, so parallel runs on one server never share a schema.
SESSION = f"hs_postgres_{uuid.uuid4().hex[:8]}"
_numbers = itertools.count(1)


@functools.cache
def unreachable() -> str | None:
    """Why the test server cannot be used, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        with psycopg.connect(SERVER, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return f"no Postgres server at {SERVER} ({' '.join(str(error).split())})"
    return None


def admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(SERVER, autocommit=True)


def drop_schema(schema: str) -> None:
    with admin() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def new_schema() -> str:
    return f"{SESSION}_{next(_numbers)}"


def url_for(schema: str) -> str:
    return f"{SERVER}?schema={schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema name no other test uses (the store creates it); dropped afterwards."""
    reason = unreachable()
    if reason is not None:
        pytest.skip(reason)
    schema = new_schema()
    yield schema
    drop_schema(schema)


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    """``postgresql://…/test?schema=<fresh schema>``."""
    return url_for(pg_schema)

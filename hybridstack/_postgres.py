"""Postgres URLs as hybridstack takes them: parse, show without the password, connect.

One place for what the Postgres ledger, checkpoints and thread leases share:

* ``postgresql://user:password@host:port/dbname?schema=NAME``: every libpq URL works;
  ``schema`` (hybridstack's own parameter, taken out before libpq sees the URL) puts
  the tables in that schema, created if missing, through the connection's
  ``search_path`` (a startup ``options`` parameter);
* connections are made in autocommit mode with ``prepare_threshold=None`` (no server-side
  prepared statements) and never in pipeline mode, so that they work behind a
  transaction pooler such as PgBouncer;
* the password never appears in a repr, a log line or an error (:attr:`PostgresTarget.shown`);
* psycopg is imported lazily; without it the error names the extra to install.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from hybridstack.errors import ConfigurationError

__all__ = [
    "PostgresTarget",
    "create_schema",
    "describe_connect_error",
    "import_pool",
    "import_psycopg",
    "is_postgres_url",
    "parse_postgres_url",
]

_SCHEMES = ("postgresql://", "postgres://")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_INSTALL = "pip install 'hybridstack[postgres]'"


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(_SCHEMES)


@dataclass(frozen=True)
class PostgresTarget:
    """Where a Postgres store lives. ``conninfo`` holds the password: never show it."""

    conninfo: str = field(repr=False)
    schema: str | None
    #: ``user@host:port/dbname`` (and the schema): safe for messages.
    shown: str

    def connect_kwargs(self) -> dict[str, Any]:
        """psycopg ``connect`` keyword arguments: autocommit, no prepared statements, the schema."""
        kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": None}
        if self.schema is not None:
            from psycopg.conninfo import conninfo_to_dict

            existing = str(conninfo_to_dict(self.conninfo).get("options") or "")
            kwargs["options"] = f"{existing} -c search_path={self.schema}".strip()
        return kwargs

    def __repr__(self) -> str:
        return f"PostgresTarget({self.shown!r})"


def parse_postgres_url(
    url: str, *, schema: str | None = None, what: str = "store"
) -> PostgresTarget:
    """Split off hybridstack's ``schema`` parameter and check what psycopg will be given."""
    psycopg = import_psycopg(what)
    text = url.strip()
    parts = urlsplit(text)
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "schema"]
    from_url = [v for k, v in query if k == "schema"]
    if from_url:
        schema = schema or from_url[-1]
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"Postgres schema name {schema!r} for the {what}: use lower-case letters, digits "
            "and _ (not starting with a digit), at most 63 characters"
        )
    conninfo = urlunsplit(parts._replace(query=urlencode(kept)))
    try:
        info = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(
            f"not a valid Postgres URL for the {what} ({_without_password(str(error), url)}); "
            "expected postgresql://user@host:port/dbname"
        ) from None
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    user = info.get("user")
    shown = f"postgresql://{user + '@' if user else ''}{host}:{port}/{info.get('dbname') or ''}"
    if schema is not None:
        shown += f"?schema={schema}"
    return PostgresTarget(conninfo=conninfo, schema=schema, shown=shown)


def _without_password(text: str, url: str) -> str:
    password = urlsplit(url.strip()).password
    return text.replace(password, "***") if password else text


def import_psycopg(what: str = "store") -> ModuleType:
    try:
        import psycopg
        import psycopg.conninfo
    except ImportError:
        raise ConfigurationError(f"a Postgres {what} needs psycopg: {_INSTALL}") from None
    return psycopg


def import_pool(what: str = "store") -> ModuleType:
    try:
        import psycopg_pool
    except ImportError:
        raise ConfigurationError(f"a Postgres {what} needs psycopg_pool: {_INSTALL}") from None
    return psycopg_pool


def create_schema(conn: Any, schema: str) -> None:
    """``CREATE SCHEMA IF NOT EXISTS`` that two processes may run at once (on its own,
    it can fail with a duplicate key when they race), on an autocommit connection."""
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"hybridstack-schema:{schema}",)
        )
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # a checked identifier


def describe_connect_error(error: Exception, target: PostgresTarget) -> tuple[bool, str]:
    """``(passing, reason)`` for a failed connect: True when retrying later may work
    (the server is down or unreachable), False when the URL itself is wrong."""
    text = " ".join(str(error).split())
    lowered = text.lower()
    if (
        "does not exist" in lowered
        or "authentication failed" in lowered
        or ("no password supplied" in lowered)
    ):
        return False, f"{text}; check the user, password and database name in the URL"
    if (
        "refused" in lowered
        or "timeout" in lowered
        or "timed out" in lowered
        or ("could not translate host name" in lowered)
    ):
        return True, f"cannot reach the Postgres server at {target.shown} ({text}); is it running?"
    return True, text

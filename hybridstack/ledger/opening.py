"""Pick a ledger from what a user wrote: ``"memory"``, a file path, or a Postgres URL.

One rule for ``Stack(ledger=...)``, ``[ledger] path`` in ``hybridstack.toml`` and the
CLI's ``--ledger``: ``postgresql://`` (or ``postgres://``) opens a
:class:`~hybridstack.ledger.postgres.PostgresLedger`, ``"memory"`` a
:class:`~hybridstack.ledger.memory.MemoryLedger`, anything else is an SQLite file path.
"""

from __future__ import annotations

import os
from typing import Any

from hybridstack._postgres import is_postgres_url
from hybridstack.ledger.base import Ledger

__all__ = ["is_postgres_url", "open_ledger"]


def open_ledger(where: str | os.PathLike[str], **options: Any) -> Ledger:
    """The ledger ``where`` names; ``options`` go to the SQL ledger's constructor."""
    if is_postgres_url(where):
        from hybridstack.ledger.postgres import PostgresLedger

        return PostgresLedger(str(where), **options)
    if str(where) == "memory":
        from hybridstack.ledger.memory import MemoryLedger

        return MemoryLedger()
    from hybridstack.ledger.sqlite import SQLiteLedger

    return SQLiteLedger(os.fspath(where), **options)

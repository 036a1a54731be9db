"""The ledger: every attempt — failed, cancelled, skipped and hedged ones too — priced and timed.

``MemoryLedger`` is the default; ``SQLiteLedger(path)`` keeps durable records that
another process can read; ``PostgresLedger(url)`` keeps them in a Postgres database that
processes on many hosts share (``pip install 'hybridstack[postgres]'``). All implement
:class:`Ledger`, and ``open_ledger("memory" | path | "postgresql://...")`` picks one::

    with SQLiteLedger("runs.db") as ledger:
        ledger.record(attempt)
        ledger.totals(run_id="r1", by="jurisdiction")   # {"CN": Totals(...), "SG": ...}
"""

from hybridstack.ledger.actions import Action, attempt_actions
from hybridstack.ledger.base import GROUP_BY, GroupBy, Ledger, RunSummary, Subscriber, Totals
from hybridstack.ledger.memory import MemoryLedger
from hybridstack.ledger.opening import open_ledger
from hybridstack.ledger.postgres import PostgresLedger
from hybridstack.ledger.pricing import price_usage, time_window_multiplier
from hybridstack.ledger.sqlite import SQLiteLedger

__all__ = [
    "GROUP_BY",
    "Action",
    "GroupBy",
    "Ledger",
    "MemoryLedger",
    "PostgresLedger",
    "RunSummary",
    "SQLiteLedger",
    "Subscriber",
    "Totals",
    "attempt_actions",
    "open_ledger",
    "price_usage",
    "time_window_multiplier",
]

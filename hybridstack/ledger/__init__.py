"""The ledger: every attempt — failed, cancelled, skipped and hedged ones too — priced and timed.

``MemoryLedger`` is the default; ``SQLiteLedger(path)`` keeps durable records that
another process can read. Both implement :class:`Ledger`::

    with SQLiteLedger("runs.db") as ledger:
        ledger.record(attempt)
        ledger.totals(run_id="r1", by="jurisdiction")   # {"CN": Totals(...), "SG": ...}
"""

from hybridstack.ledger.actions import Action, attempt_actions
from hybridstack.ledger.base import GROUP_BY, GroupBy, Ledger, RunSummary, Subscriber, Totals
from hybridstack.ledger.memory import MemoryLedger
from hybridstack.ledger.pricing import price_usage, time_window_multiplier
from hybridstack.ledger.sqlite import SQLiteLedger

__all__ = [
    "GROUP_BY",
    "Action",
    "GroupBy",
    "Ledger",
    "MemoryLedger",
    "RunSummary",
    "SQLiteLedger",
    "Subscriber",
    "Totals",
    "attempt_actions",
    "price_usage",
    "time_window_multiplier",
]

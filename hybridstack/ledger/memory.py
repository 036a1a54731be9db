"""The default ledger: the newest attempts kept in this process, with exact running totals.

Memory stays bounded however long the process runs: the newest ``max_attempts``
attempts (10,000 by default: about 30 MB) are kept in a ring and indexed by call and
run, and older ones are evicted. The totals do not shrink with them: every record adds
to running sums (one cell per combination of the
:data:`~hybridstack.ledger.base.GROUP_BY` values, for the whole ledger and for each of
the newest ``max_runs`` runs), so ``totals()`` and ``runs()`` count everything ever
recorded while ``attempts()`` shows the window.

Appends take one lock and do a fixed amount of work, so recording stays O(1). Lookups
by ``call_id`` or ``run_id`` read the index, never the whole ledger."""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict, deque
from datetime import datetime
from typing import Any

from hybridstack.ledger.base import (
    GROUP_BY,
    GroupBy,
    Ledger,
    RunSummary,
    Totals,
    aggregate,
    check_group_by,
    run_summaries,
)
from hybridstack.types import Attempt

#: Attempts a :class:`MemoryLedger` keeps by default (about 3 kB each).
DEFAULT_MAX_ATTEMPTS = 10_000
#: Runs whose totals a :class:`MemoryLedger` keeps by default.
DEFAULT_MAX_RUNS = 1_000
#: A small ``max_attempts`` still remembers this many calls (about 200 bytes each), so
#: that a call with attempts far apart is not counted twice.
MIN_CALLS_REMEMBERED = 1_000


#: An attempt's value for each GROUP_BY dimension, in one call.
_group_keys = operator.attrgetter(*GROUP_BY)
_ALL_FRESH = (True,) * len(GROUP_BY)
_NONE_FRESH = (False,) * len(GROUP_BY)


class _CallSeen:
    """What the totals know of one call: its run, the dimension values its attempts had."""

    __slots__ = ("keys", "ok_counted", "run_id")

    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        #: Key tuples of its attempts (only those that brought a new value).
        self.keys: list[tuple[str, ...]] = []
        #: Whether it already counts among its run's ok calls.
        self.ok_counted = False


# A cell holds the sums of the attempts that share one combination of GROUP_BY values
# (deployment, outcome …): a handful per deployment, so a scope has few. Per cell:
_ATTEMPTS, _IN, _OUT, _CACHED, _COST, _LATENCY = range(6)
#: … and from index _NEW on, per dimension, the calls first counted under its value.
_NEW = 6
_OUTCOME = GROUP_BY.index("outcome")
_UNCOUNTED = {"ok": "ok", "cancelled": "cancelled", "skipped": "skipped"}


class _Scope:
    """Running sums of one scope (the whole ledger, or one run), one cell per combination.

    Counts and tokens are integers, exact in any order. Cost and latency are floats:
    the scope's overall ones are summed in recording order, exactly as a recount would;
    a per-dimension one adds up its cells' sums, which can differ from a recount in the
    last bits of a float.
    """

    __slots__ = ("calls", "cells", "cost_usd", "latency_s", "ok_calls", "started_at")

    def __init__(self, started_at: datetime | None = None) -> None:
        self.cells: dict[tuple[str, ...], list[Any]] = {}
        self.calls = 0
        self.cost_usd = 0.0
        self.latency_s = 0.0
        #: Calls with an ``ok`` attempt (kept for runs: RunSummary needs them).
        self.ok_calls = 0
        self.started_at = started_at

    def add(
        self, a: Attempt, keys: tuple[str, ...], new_call: bool, fresh: tuple[bool, ...]
    ) -> None:
        """Add ``a`` (its GROUP_BY values are ``keys``); its call counts where ``fresh``."""
        cell = self.cells.get(keys)
        if cell is None:
            cell = self.cells[keys] = [0, 0, 0, 0, 0.0, 0.0, *(0 for _ in GROUP_BY)]
        usage = a.usage
        cell[_ATTEMPTS] += 1
        cell[_IN] += usage.input_tokens
        cell[_OUT] += usage.output_tokens
        cell[_CACHED] += usage.cached_input_tokens
        cell[_COST] += a.cost_usd
        cell[_LATENCY] += a.latency_s
        self.cost_usd += a.cost_usd
        self.latency_s += a.latency_s
        if new_call:
            self.calls += 1
        for i, is_new in enumerate(fresh):
            if is_new:
                cell[_NEW + i] += 1

    def totals(self, by: GroupBy | None) -> dict[str, Totals]:
        index = None if by is None else GROUP_BY.index(by)
        groups: dict[str, dict[str, Any]] = {}
        for keys, cell in self.cells.items():
            name = "all" if index is None else keys[index]
            group = groups.get(name)
            if group is None:
                group = groups[name] = dict.fromkeys(_TOTAL_FIELDS, 0)
                group["cost_usd"] = group["latency_s"] = 0.0
            group["attempts"] += cell[_ATTEMPTS]
            group[_UNCOUNTED.get(keys[_OUTCOME], "failed")] += cell[_ATTEMPTS]
            group["input_tokens"] += cell[_IN]
            group["output_tokens"] += cell[_OUT]
            group["cached_input_tokens"] += cell[_CACHED]
            group["cost_usd"] += cell[_COST]
            group["latency_s"] += cell[_LATENCY]
            if index is not None:
                group["calls"] += cell[_NEW + index]
        if index is None:
            overall = groups.get("all", dict.fromkeys(_TOTAL_FIELDS, 0))
            overall.update(cost_usd=self.cost_usd, latency_s=self.latency_s, calls=self.calls)
            return {"all": Totals(**overall)}
        return {name: Totals(**groups[name]) for name in sorted(groups)}

    @property
    def attempts(self) -> int:
        return sum(cell[_ATTEMPTS] for cell in self.cells.values())


_TOTAL_FIELDS = tuple(Totals.model_fields)


class MemoryLedger(Ledger):
    """Attempts in memory (lost when the process ends), bounded by default. Thread-safe.

    ``attempts()`` returns the newest ``max_attempts`` attempts (``None``: every one,
    and memory grows with them); :attr:`evicted` counts the older ones let go.
    ``totals()`` without ``call_id`` and ``runs()`` stay exact for everything ever
    recorded: they come from running sums, not from the kept attempts. Per-run sums
    are kept for the newest ``max_runs`` runs (``None``: all); ``totals(call_id=...)``,
    and the runs beyond ``max_runs``, are computed from the kept attempts.

    A call counts once per total as long as its attempts come within the newest
    ``max(max_attempts, 1000)`` calls, which they do unless one call outlives that many.
    """

    def __init__(
        self,
        *,
        max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
        max_runs: int | None = DEFAULT_MAX_RUNS,
    ) -> None:
        super().__init__()
        for name, value in (("max_attempts", max_attempts), ("max_runs", max_runs)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer or None, not {value!r}")
        self.max_attempts = max_attempts
        self.max_runs = max_runs
        self._max_calls = None if max_attempts is None else max(max_attempts, MIN_CALLS_REMEMBERED)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._all: deque[Attempt] = deque()
        self._by_call: dict[str, deque[Attempt]] = {}
        self._by_run: dict[str, deque[Attempt]] = {}
        self._overall = _Scope()
        self._runs: OrderedDict[str, _Scope] = OrderedDict()
        # Per call, what it has been counted under, so that its later attempts do not
        # count it again. The newest calls only.
        self._calls: OrderedDict[str, _CallSeen] = OrderedDict()
        self._recorded = 0
        #: Attempts evicted by ``max_attempts`` (they stay in the totals).
        self.evicted = 0

    def __repr__(self) -> str:
        recorded = self._recorded
        if self.max_attempts is None:
            return f"MemoryLedger(attempts={len(self._all)}, max_attempts=None: unbounded)"
        return (
            f"MemoryLedger(holding {len(self._all)} of {recorded} attempts recorded; "
            f"max_attempts={self.max_attempts} keeps the newest, totals cover all)"
        )

    def __len__(self) -> int:
        return len(self._all)

    @property
    def recorded(self) -> int:
        """Attempts recorded since the ledger was made (or cleared), evicted ones included."""
        return self._recorded

    # --- writing -------------------------------------------------------------------

    def _write(self, attempt: Attempt) -> None:
        with self._lock:
            self._all.append(attempt)
            _index(self._by_call, attempt.call_id, attempt)
            if attempt.run_id is not None:
                _index(self._by_run, attempt.run_id, attempt)
            self._count(attempt)
            self._recorded += 1
            if self.max_attempts is not None and len(self._all) > self.max_attempts:
                self._evict_oldest()

    def _count(self, a: Attempt) -> None:
        keys: tuple[str, ...] = _group_keys(a)
        seen = self._calls.get(a.call_id)
        if seen is None:
            new_call, fresh = True, _ALL_FRESH
            seen = self._calls[a.call_id] = _CallSeen(a.run_id)
            if self._max_calls is not None and len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)
        else:
            # A retry or fail-over of a known call: it counts again only under the
            # dimension values none of its earlier attempts had.
            self._calls.move_to_end(a.call_id)
            new_call = False
            if keys in seen.keys:  # the usual retry: same deployment, same outcome
                fresh = _NONE_FRESH
            else:
                fresh = tuple(
                    all(earlier[i] != value for earlier in seen.keys)
                    for i, value in enumerate(keys)
                )
        if new_call or any(fresh):
            seen.keys.append(keys)
        self._overall.add(a, keys, new_call, fresh)
        if a.run_id is None:
            return
        run = self._runs.get(a.run_id)
        if run is None:
            run = self._runs[a.run_id] = _Scope(a.started_at)
            if self.max_runs is not None and len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
        else:
            self._runs.move_to_end(a.run_id)
            if run.started_at is None or a.started_at < run.started_at:
                run.started_at = a.started_at
        if a.run_id == seen.run_id:
            run.add(a, keys, new_call, fresh)
            if a.outcome == "ok" and not seen.ok_counted:
                seen.ok_counted = True
                run.ok_calls += 1
        else:  # one call id in two runs (not what the executor does): new to this run
            run.add(a, keys, True, _ALL_FRESH)
            run.ok_calls += a.outcome == "ok"

    def _evict_oldest(self) -> None:
        # Appends happen in the same order everywhere, so the oldest attempt is at the
        # left of its call's and its run's deque too.
        oldest = self._all.popleft()
        _unindex(self._by_call, oldest.call_id)
        if oldest.run_id is not None:
            _unindex(self._by_run, oldest.run_id)
        self.evicted += 1

    # --- reading -------------------------------------------------------------------

    def attempts(
        self,
        *,
        call_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Attempt]:
        """The kept attempts matching the filters, oldest first (evicted ones are gone)."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        with self._lock:
            if call_id is not None:
                found = list(self._by_call.get(call_id, ()))
                if run_id is not None:
                    found = [a for a in found if a.run_id == run_id]
            elif run_id is not None:
                found = list(self._by_run.get(run_id, ()))
            else:
                found = list(self._all)
        if limit is not None:
            found = found[len(found) - limit :] if limit else []
        return found

    def totals(
        self,
        *,
        run_id: str | None = None,
        call_id: str | None = None,
        by: GroupBy | None = None,
    ) -> dict[str, Totals]:
        check_group_by(by)
        if call_id is None:
            with self._lock:
                scope = self._overall if run_id is None else self._runs.get(run_id)
                if scope is not None:
                    return scope.totals(by)
        return aggregate(self.attempts(run_id=run_id, call_id=call_id), by)

    def runs(self) -> list[RunSummary]:
        """The newest ``max_runs`` runs, each with exact totals."""
        with self._lock:
            rows = [
                (
                    run_id,
                    run.started_at,
                    run.attempts,
                    run.calls,
                    run.cost_usd,
                    run.ok_calls,
                )
                for run_id, run in self._runs.items()
                if run.started_at is not None  # always set: a run starts with its first attempt
            ]
        return run_summaries(rows)

    def clear(self) -> None:
        """Forget every attempt and every total (subscribers stay)."""
        with self._lock:
            self._reset()


def _index(index: dict[str, deque[Attempt]], key: str, attempt: Attempt) -> None:
    bucket = index.get(key)
    if bucket is None:
        index[key] = deque((attempt,))
    else:
        bucket.append(attempt)


def _unindex(index: dict[str, deque[Attempt]], key: str) -> None:
    bucket = index[key]
    bucket.popleft()
    if not bucket:
        del index[key]

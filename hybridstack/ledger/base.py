"""The ledger contract: record every attempt, read them back, total them.

A ledger implementation writes (:meth:`Ledger._write`) and reads
(:meth:`Ledger.attempts`); everything else has a working default here — totals and
run summaries computed from the attempts, subscribers, the context manager — which an
implementation may override with something faster (the SQLite ledger totals in SQL).

:meth:`Ledger.record` is on the executor's hot path: it normalises the attempt
(``started_at`` becomes tz-aware UTC, so every ledger hands back the same values),
writes it, then tells the subscribers. A subscriber that raises is logged and skipped;
it never loses a record nor fails the call that made the attempt.

Two counters say whether the ledger holds everything it was given: :attr:`Ledger.pending`
(recorded, not yet in storage: a batch, or writes held after a failure) and
:attr:`Ledger.dropped` (recorded and lost for good: ``_write`` raised, or a bound on
held attempts was reached). Storage that fails should hold and count, not raise: the
executor records on its hot path, and a model call must not fail for its bookkeeping.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Self, get_args

from pydantic import BaseModel, ConfigDict

from hybridstack.types import Attempt

logger = logging.getLogger("hybridstack.ledger")

#: The dimensions :meth:`Ledger.totals` can group by (each is an :class:`Attempt` field).
GroupBy = Literal["jurisdiction", "family", "deployment", "outcome", "region"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)


class Totals(BaseModel):
    """Sums over a set of attempts. ``attempts == ok + failed + cancelled + skipped``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = 0
    ok: int = 0
    #: Attempts that ended in one of the five error kinds.
    failed: int = 0
    cancelled: int = 0
    #: Attempts the executor did not send (breaker open, budget spent).
    skipped: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    #: Sum of the attempts' latencies (not wall time: hedged attempts overlap).
    latency_s: float = 0.0
    #: Distinct call ids among these attempts.
    calls: int = 0


class RunSummary(BaseModel):
    """One run (a graph run, a batch …): its attempts and calls, and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    #: When the run's earliest attempt started (UTC).
    started_at: datetime
    attempts: int
    calls: int
    cost_usd: float
    #: Calls with at least one ``ok`` attempt.
    ok_calls: int
    #: Calls without any ``ok`` attempt (failed, cancelled or skipped throughout).
    failed_calls: int


Subscriber = Callable[[Attempt], None]


class Ledger(abc.ABC):
    """Where every attempt goes: failed, cancelled, skipped and hedged ones too.

    Subclasses call ``super().__init__()`` and implement :meth:`_write` and
    :meth:`attempts`; they may override :meth:`totals`, :meth:`runs` and :meth:`close`.
    """

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._subscribers_lock = threading.Lock()
        self._dropped = 0
        self._dropped_lock = threading.Lock()

    # --- health --------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Attempts recorded but lost for good (each was logged as an error)."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Attempts recorded but not yet in storage (0 unless the ledger buffers)."""
        return 0

    def _count_dropped(self, n: int = 1) -> None:
        with self._dropped_lock:
            self._dropped += n

    # --- writing -------------------------------------------------------------------

    def record(self, attempt: Attempt, *, owned: bool = False) -> None:
        """Store ``attempt`` and tell the subscribers. Synchronous and cheap.

        The ledger keeps a normalised copy, so a caller may reuse its object. ``owned=True``
        hands the object over instead (the caller built it for the ledger, with
        ``started_at`` in UTC, and will not change it): the executor's hot path.

        An error from ``_write`` means the attempt is lost: it is counted in
        :attr:`dropped` and propagates (the executor logs it and goes on).
        """
        if not isinstance(attempt, Attempt):
            raise TypeError(f"a ledger records Attempt objects, not {type(attempt).__name__}")
        stored = attempt if owned and attempt.started_at.tzinfo is UTC else normalise(attempt)
        try:
            self._write(stored)
        except BaseException:
            self._count_dropped()
            raise
        for callback in self._subscribers:
            try:
                callback(stored)
            except Exception:
                logger.exception(
                    "ledger subscriber %r raised on attempt %s/%s; the attempt is recorded",
                    callback,
                    stored.call_id,
                    stored.attempt_index,
                )

    @abc.abstractmethod
    def _write(self, attempt: Attempt) -> None:
        """Store one normalised attempt (the ledger owns it from now on)."""

    def flush(self) -> None:  # noqa: B027 - an optional hook, a no-op by default
        """Make every recorded attempt visible to other readers (a no-op unless buffered)."""

    # --- reading -------------------------------------------------------------------

    @abc.abstractmethod
    def attempts(
        self,
        *,
        call_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Attempt]:
        """Recorded attempts matching the filters, in recording order.

        ``limit`` keeps the most recent ``limit`` of them (still oldest first).
        """

    def totals(
        self,
        *,
        run_id: str | None = None,
        call_id: str | None = None,
        by: GroupBy | None = None,
    ) -> dict[str, Totals]:
        """Totals of the matching attempts: ``{"all": Totals}``, or one per value of ``by``."""
        check_group_by(by)
        return aggregate(self.attempts(run_id=run_id, call_id=call_id), by)

    def runs(self) -> list[RunSummary]:
        """One summary per run id, earliest run first (attempts without a run are left out)."""
        return summarize_runs(self.attempts())

    # --- events --------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(attempt)`` after each record; returns a function that unsubscribes.

        Callbacks run in the recording thread, so they should be quick (hand the event
        to a queue). One that raises is logged and does not stop recording.
        """
        if not callable(callback):
            raise TypeError("subscribe() needs a callable taking an Attempt")
        token = _Subscription(callback)
        with self._subscribers_lock:
            self._subscribers = (*self._subscribers, token)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not token)

        return unsubscribe

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Release resources; the default drops the subscribers."""
        with self._subscribers_lock:
            self._subscribers = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Subscription:
    """Wraps a callback so that subscribing the same function twice unsubscribes one."""

    __slots__ = ("callback",)

    def __init__(self, callback: Subscriber) -> None:
        self.callback = callback

    def __call__(self, attempt: Attempt) -> None:
        self.callback(attempt)

    def __repr__(self) -> str:
        return repr(self.callback)


# --- helpers shared by the implementations ------------------------------------------


def normalise(attempt: Attempt) -> Attempt:
    """A copy the ledger can own: ``started_at`` in UTC (naive taken as UTC), own containers."""
    started = attempt.started_at
    update: dict[str, object] = {}
    if started.tzinfo is not UTC:
        update["started_at"] = (
            started.replace(tzinfo=UTC) if started.tzinfo is None else started.astimezone(UTC)
        )
    if attempt.redactions:
        update["redactions"] = dict(attempt.redactions)
    return attempt.model_copy(update=update) if update else attempt.model_copy()


def check_group_by(by: str | None) -> None:
    if by is not None and by not in GROUP_BY:
        raise ValueError(f"totals(by=...) takes one of {', '.join(GROUP_BY)} or None, not {by!r}")


class _Sums:
    """Running sums of attempts; ``calls`` is counted by the caller (it needs the call ids)."""

    __slots__ = (
        "attempts",
        "cached_input_tokens",
        "calls",
        "cancelled",
        "cost_usd",
        "failed",
        "input_tokens",
        "latency_s",
        "ok",
        "output_tokens",
        "skipped",
    )

    def __init__(self) -> None:
        self.attempts = self.ok = self.failed = self.cancelled = self.skipped = 0
        self.input_tokens = self.output_tokens = self.cached_input_tokens = 0
        self.cost_usd = self.latency_s = 0.0
        self.calls = 0

    def add(self, a: Attempt) -> None:
        self.attempts += 1
        if a.outcome == "ok":
            self.ok += 1
        elif a.outcome == "cancelled":
            self.cancelled += 1
        elif a.outcome == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        usage = a.usage
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cached_input_tokens += usage.cached_input_tokens
        self.cost_usd += a.cost_usd
        self.latency_s += a.latency_s

    def totals(self) -> Totals:
        return Totals(
            attempts=self.attempts,
            ok=self.ok,
            failed=self.failed,
            cancelled=self.cancelled,
            skipped=self.skipped,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cached_input_tokens=self.cached_input_tokens,
            cost_usd=self.cost_usd,
            latency_s=self.latency_s,
            calls=self.calls,
        )


def aggregate(attempts: Iterable[Attempt], by: GroupBy | None = None) -> dict[str, Totals]:
    """Totals of ``attempts``: ``{"all": ...}`` (even when empty) or one per ``by`` value."""
    check_group_by(by)
    groups: dict[str, tuple[_Sums, set[str]]] = {}
    if by is None:
        groups["all"] = (_Sums(), set())
    for a in attempts:
        key = "all" if by is None else getattr(a, by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = (_Sums(), set())
        group[0].add(a)
        group[1].add(a.call_id)
    for sums, call_ids in groups.values():
        sums.calls = len(call_ids)
    return {key: groups[key][0].totals() for key in sorted(groups)}


class _RunSums:
    __slots__ = ("attempts", "call_ids", "cost_usd", "ok_call_ids", "started_at")

    def __init__(self, started_at: datetime) -> None:
        self.started_at = started_at
        self.attempts = 0
        self.cost_usd = 0.0
        self.call_ids: set[str] = set()
        self.ok_call_ids: set[str] = set()


def summarize_runs(attempts: Iterable[Attempt]) -> list[RunSummary]:
    """One :class:`RunSummary` per run id, ordered by start time then run id."""
    runs: dict[str, _RunSums] = {}
    for a in attempts:
        if a.run_id is None:
            continue
        run = runs.get(a.run_id)
        if run is None:
            run = runs[a.run_id] = _RunSums(a.started_at)
        run.attempts += 1
        run.cost_usd += a.cost_usd
        run.call_ids.add(a.call_id)
        if a.outcome == "ok":
            run.ok_call_ids.add(a.call_id)
        run.started_at = min(run.started_at, a.started_at)
    return run_summaries(
        (
            run_id,
            run.started_at,
            run.attempts,
            len(run.call_ids),
            run.cost_usd,
            len(run.ok_call_ids),
        )
        for run_id, run in runs.items()
    )


def run_summaries(
    rows: Iterable[tuple[str, datetime, int, int, float, int]],
) -> list[RunSummary]:
    """Summaries from ``(run_id, started_at, attempts, calls, cost_usd, ok_calls)``, in order."""
    summaries = [
        RunSummary(
            run_id=run_id,
            started_at=started_at,
            attempts=attempts,
            calls=calls,
            cost_usd=cost_usd,
            ok_calls=ok_calls,
            failed_calls=calls - ok_calls,
        )
        for run_id, started_at, attempts, calls, cost_usd, ok_calls in rows
    ]
    summaries.sort(key=lambda s: (s.started_at, s.run_id))
    return summaries

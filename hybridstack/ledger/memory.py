"""The default ledger: attempts kept in this process, indexed by call and run.

Appends take one lock and touch three deques, so recording stays O(1) even when the
ledger is bounded (``max_attempts`` drops the oldest attempts first). Lookups by
``call_id`` or ``run_id`` read the index, never the whole ledger.
"""

from __future__ import annotations

import threading
from collections import deque

from hybridstack.ledger.base import Ledger
from hybridstack.types import Attempt


class MemoryLedger(Ledger):
    """Attempts in memory (lost when the process ends). Thread-safe.

    ``max_attempts`` bounds the memory used: beyond it the oldest attempts are dropped
    (and leave the totals with them).
    """

    def __init__(self, *, max_attempts: int | None = None) -> None:
        super().__init__()
        if max_attempts is not None and max_attempts <= 0:
            raise ValueError(f"max_attempts must be a positive integer or None, not {max_attempts}")
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._all: deque[Attempt] = deque()
        self._by_call: dict[str, deque[Attempt]] = {}
        self._by_run: dict[str, deque[Attempt]] = {}
        #: Attempts dropped because of ``max_attempts``.
        self.dropped = 0

    def __repr__(self) -> str:
        return f"MemoryLedger(attempts={len(self._all)}, max_attempts={self.max_attempts})"

    def __len__(self) -> int:
        return len(self._all)

    def _write(self, attempt: Attempt) -> None:
        with self._lock:
            self._all.append(attempt)
            _index(self._by_call, attempt.call_id, attempt)
            if attempt.run_id is not None:
                _index(self._by_run, attempt.run_id, attempt)
            if self.max_attempts is not None and len(self._all) > self.max_attempts:
                self._evict_oldest()

    def _evict_oldest(self) -> None:
        # Appends happen in the same order everywhere, so the oldest attempt is at the
        # left of its call's and its run's deque too.
        oldest = self._all.popleft()
        _unindex(self._by_call, oldest.call_id)
        if oldest.run_id is not None:
            _unindex(self._by_run, oldest.run_id)
        self.dropped += 1

    def attempts(
        self,
        *,
        call_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Attempt]:
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

    def clear(self) -> None:
        """Forget every attempt (subscribers stay)."""
        with self._lock:
            self._all.clear()
            self._by_call.clear()
            self._by_run.clear()


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

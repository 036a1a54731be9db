"""What a closed breaker judges by: the failure-rate window and the failure run.

:class:`OutcomeWindow` counts one breaker's recent outcomes and says when they call for
opening it (:meth:`OutcomeWindow.should_open`):

* the **rate window**: the last outcomes, at most ``window_size`` of them and none older
  than ``window_s``; it may open the breaker once it holds ``minimum_requests`` and at
  least ``failure_rate_threshold`` of them failed;
* the **failure run**: the send numbers of the failures sent after the newest success,
  so an instant 5xx does not overtake a slower success sent before it; a short run
  (``failure_threshold``) opens a breaker that has not answered within the window, a
  long one (``minimum_requests``) one that answered lately.

It only counts: the state machine and the shared store are
:class:`~hybridstack.resilience.breaker_circuit.CircuitBreaker`'s.
"""

from __future__ import annotations

from collections import deque

from hybridstack.resilience.settings import BreakerSettings

__all__ = ["OutcomeWindow"]


class OutcomeWindow:
    """One breaker's rate window and failure run (times from the breaker's clock)."""

    __slots__ = ("_newest_success", "_outcomes", "_run", "failures", "last_success_at")

    def __init__(self) -> None:
        # (completed at, failed) per outcome, oldest first.
        self._outcomes: deque[tuple[float, bool]] = deque()
        #: Failures among the outcomes in the window.
        self.failures = 0
        # Send numbers of the failures sent after the newest success.
        self._run: list[int] = []
        self._newest_success = -1
        #: When the newest success completed (None: never).
        self.last_success_at: float | None = None

    @property
    def requests(self) -> int:
        """Outcomes in the window (as of the last :meth:`trim`)."""
        return len(self._outcomes)

    @property
    def run(self) -> int:
        """Failures among the requests sent after the newest success."""
        return len(self._run)

    def success(self, seq: int, now: float, settings: BreakerSettings) -> None:
        """The request sent as ``seq`` succeeded at ``now``."""
        self.last_success_at = now
        self._add(now, False, settings)
        if seq > self._newest_success:
            self._newest_success = seq
            run = self._run
            if run:
                self._run = [s for s in run if s > seq]

    def failure(self, seq: int, now: float, settings: BreakerSettings) -> None:
        """The request sent as ``seq`` failed at ``now``."""
        self._add(now, True, settings)
        if seq > self._newest_success:
            self._run.append(seq)

    def _add(self, now: float, failed: bool, settings: BreakerSettings) -> None:
        self._outcomes.append((now, failed))
        if failed:
            self.failures += 1
        self.trim(now, settings)

    def trim(self, now: float, settings: BreakerSettings) -> None:
        """Drop the outcomes that left the window (too old, or past its size)."""
        outcomes = self._outcomes
        horizon = now - settings.window_s
        size = settings.window_size
        while outcomes and (len(outcomes) > size or outcomes[0][0] < horizon):
            if outcomes.popleft()[1]:
                self.failures -= 1

    def should_open(self, now: float, settings: BreakerSettings) -> bool:
        """Whether the failure rate or the failure run calls for opening the breaker."""
        window = len(self._outcomes)
        if window >= settings.minimum_requests and self.failures >= (
            settings.failure_rate_threshold * window
        ):
            return True
        answered_lately = (
            self.last_success_at is not None and now - self.last_success_at <= settings.window_s
        )
        needed = settings.minimum_requests if answered_lately else settings.failure_threshold
        return len(self._run) >= needed

    def clear(self) -> None:
        """Forget the window and the run (the breaker closed); the newest success stays."""
        self._outcomes.clear()
        self.failures = 0
        self._run = []

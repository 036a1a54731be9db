"""What the executor reports while it runs a call: :class:`ExecutionEvent` and its kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from hybridstack.catalog.models import Deployment
from hybridstack.types import ChatRequest

__all__ = ["EventKind", "ExecutionEvent", "Redactor"]

EventKind = Literal[
    "attempt_failed", "retry", "failover", "hedge", "resumed", "skipped", "breaker_open"
]

#: ``(request, deployment) -> (request to send, {kind: count})``
Redactor = Callable[[ChatRequest, Deployment], tuple[ChatRequest, Mapping[str, int]]]


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """Something the executor did for one call, for progress displays and alerting.

    ``kind``:

    * ``attempt_failed`` — an attempt on ``deployment`` failed (``error_kind``, ``message``);
    * ``retry`` — the same ``deployment`` is tried again after ``delay_s``;
    * ``failover`` — moving from ``deployment`` (failed) to ``to_deployment``
      (``delay_s`` > 0 when it had to wait);
    * ``hedge`` — ``to_deployment`` started racing ``deployment`` after ``delay_s``;
    * ``resumed`` — a stream broke on ``deployment`` and resumed on ``to_deployment``;
    * ``skipped`` — ``deployment`` dropped for this call without a request (filtered by
      an earlier error, no API key);
    * ``breaker_open`` — a breaker refused ``deployment`` (skipped, or deferred when
      ``delay_s`` is set), or this call's failure opened/held one (``message`` says).
    """

    kind: EventKind
    deployment: str
    to_deployment: str | None = None
    error_kind: str | None = None
    message: str = ""
    delay_s: float | None = None
    call_id: str = ""

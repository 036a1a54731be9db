"""The state of one executor call: its plan's slots, budget clock, counters and events.

A :class:`Call` is what every part of the executor (scheduling, attempts, recording,
hedging, streaming, failure reporting) reads and updates for one ``execute``/``stream``
call; it makes no decisions itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from hybridstack._secrets import register_secret
from hybridstack.catalog.models import Deployment
from hybridstack.errors import ProviderError
from hybridstack.plan import Candidate, Plan
from hybridstack.resilience.breaker import BreakerAdmission, BreakerBlock
from hybridstack.resilience.events import EventKind, ExecutionEvent, Redactor
from hybridstack.resilience.settings import Budget
from hybridstack.types import ChatRequest, ChatResponse

if TYPE_CHECKING:
    from hybridstack.resilience.executor import Executor

logger = logging.getLogger("hybridstack.resilience")
_DEBUG = logging.DEBUG

_DEFAULT_BUDGET = Budget()

#: Slot states: not tried yet, may be tried again at ``ready_at``, done for this call …
FRESH = 0
WAIT = 1
DONE = 2
#: … and behind an open breaker: tried only when nothing fresh or waiting is left.
PARKED = 3


class Slot:
    """One candidate's state within one call."""

    __slots__ = (
        "admission",
        "block",
        "cand",
        "dep",
        "gate",
        "index",
        "ready_at",
        "state",
        "tries",
        "window",
    )

    def __init__(self, index: int, cand: Candidate, window: int) -> None:
        self.index = index
        self.cand = cand
        self.dep: Deployment = cand.deployment
        self.tries = 0
        self.state = FRESH
        self.ready_at = 0.0
        self.window = window
        self.gate = "closed"
        #: The breakers' admission of the attempt in flight (handed back with its outcome).
        self.admission: BreakerAdmission | None = None
        #: While parked: the breaker block that parked it (for the error if it gives up).
        self.block: BreakerBlock | None = None


class Skipped(Exception):
    """Internal: the slot was dropped before a request (no provider could be built)."""


class DeadlineHit(Exception):
    """Internal: the call's deadline passed while an attempt was running."""


#: Header names whose values are credentials of some kind (a session token, a signature).
_SECRET_NAME = re.compile(r"token|secret|key|auth|passw|signature|session|cookie|credential", re.I)
#: Known not to be secret although their names say "key".
_NOT_SECRET = frozenset({"idempotency-key"})


def _guard_secret_headers(headers: Mapping[str, str]) -> None:
    """Register secret-looking header values, so no log record, error or ledger row shows them
    (an SDK logs its request headers at DEBUG)."""
    for name, value in headers.items():
        if name.lower() not in _NOT_SECRET and _SECRET_NAME.search(name):
            register_secret(value)


class Call:
    """The state of one ``execute``/``stream`` call."""

    def __init__(
        self,
        ex: Executor,
        plan: Plan,
        request: ChatRequest,
        budget: Budget | None,
        call_id: str | None,
        run_id: str | None,
        on_event: Callable[[ExecutionEvent], None] | None,
        redactions: Mapping[str, int] | None,
        redact: Redactor | None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.ex = ex
        self.plan = plan
        self.request = request
        self.budget = budget or _DEFAULT_BUDGET
        self.call_id = call_id or uuid.uuid4().hex[:16]
        self.run_id = run_id
        self.on_event = on_event
        self.redactions: dict[str, int] = dict(redactions) if redactions else {}
        self.redact = redact
        #: The caller's own headers, sent with every attempt under hybridstack's own.
        self.extra_headers = extra_headers
        if extra_headers:
            _guard_secret_headers(extra_headers)
        self.loop: asyncio.AbstractEventLoop
        self.deadline: float | None = None
        self.skill = getattr(plan, "skill", None)
        self.data_class = getattr(plan, "data_class", None)
        catalog = ex.catalog
        slots = []
        for index, cand in enumerate(plan.candidates):
            window = getattr(cand, "context_window", 0) or 0
            if not window and catalog is not None:
                try:
                    window = catalog.context_window(cand.deployment)
                except Exception:
                    window = 0
            slots.append(Slot(index, cand, window))
        self.slots: list[Slot] = slots
        #: Network attempts started so far, and their priced cost.
        self.attempts = 0
        self.spent = 0.0
        #: The failed attempts' errors, deployments skipped without a request, and the
        #: deployments dropped before their first try (deployment id -> why).
        self.errors: list[ProviderError] = []
        self.skips: list[ProviderError] = []
        self.not_tried: dict[str, str] = {}
        self.redacted: dict[str, tuple[ChatRequest, dict[str, int]]] | None = None

    def start(self) -> None:
        """The call starts now: its deadline counts from here."""
        self.loop = loop = asyncio.get_running_loop()
        deadline_s = self.budget.deadline_s
        self.deadline = loop.time() + deadline_s if deadline_s is not None else None

    def past_deadline(self) -> bool:
        return self.deadline is not None and self.loop.time() >= self.deadline - 1e-3

    def emit(
        self,
        kind: EventKind,
        deployment: str,
        *,
        to: str | None = None,
        error_kind: str | None = None,
        message: str = "",
        delay_s: float | None = None,
    ) -> None:
        """Report an :class:`ExecutionEvent` to ``on_event`` (and the debug log)."""
        callback = self.on_event
        debug = logger.isEnabledFor(_DEBUG)
        if callback is None and not debug:
            return
        event = ExecutionEvent(kind, deployment, to, error_kind, message, delay_s, self.call_id)
        if debug:
            logger.debug(
                "call %s: %s %s%s%s",
                self.call_id,
                kind,
                deployment,
                f" -> {to}" if to else "",
                f" ({message})" if message else "",
            )
        if callback is not None:
            try:
                callback(event)
            except Exception:
                logger.exception("on_event callback raised on %s event; ignored", kind)

    def succeeded(self, slot: Slot, response: ChatResponse) -> ChatResponse:
        """The winner's bookkeeping (callbacks) and the call-level fields of its reply."""
        callback = self.ex.on_success
        if callback is not None:
            try:
                callback(slot.dep)
            except Exception:
                logger.exception("on_success callback raised for %s; ignored", slot.dep.id)
        return response.model_copy(update={"cost_usd": self.spent, "attempts": self.attempts})

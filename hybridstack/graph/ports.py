"""The agent layer's view of the Stack: exactly what the graph calls, as typed Protocols.

:class:`hybridstack.Stack` satisfies :class:`AgentStack` structurally (it does not import
this module: imports point down), and so does any stand-in a test or an application
passes to :class:`~hybridstack.graph.Agent`. Nothing in ``hybridstack.graph`` reaches past
these members (no ``router``, ``catalog`` or other attributes are probed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from hybridstack.ledger.base import GroupBy
from hybridstack.plan import Plan
from hybridstack.resilience import ExecutionEvent
from hybridstack.types import (
    Attempt,
    ChatRequest,
    ChatResponse,
    MessagesInput,
    StreamEvent,
    Tool,
)

__all__ = ["AgentStack", "EventCallback", "LedgerReader", "SyncStack"]

#: What the graph passes as ``on_event``: called with every execution event of a call.
EventCallback = Callable[[ExecutionEvent], None]


@runtime_checkable
class LedgerReader(Protocol):
    """The part of a ledger a run's result reads: its attempts and per-group totals."""

    def attempts(self, *, run_id: str | None = None) -> Sequence[Attempt]: ...

    def totals(
        self, *, run_id: str | None = None, by: GroupBy | None = None
    ) -> Mapping[str, Any]: ...


@runtime_checkable
class AgentStack(Protocol):
    """What the agent graph needs from the stack it runs on.

    ``complete``/``stream`` make model calls (routing, fail-over and the ledger are the
    stack's business); ``route`` plans a call without making it (preflight, review);
    ``allowed_jurisdictions`` and ``known_skills`` answer the planner and the data-class
    lattice; ``ledger`` is read for the run's result.
    """

    @property
    def ledger(self) -> LedgerReader: ...

    async def complete(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_schema: Mapping[str, Any] | type | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        policy: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_event: EventCallback | None = None,
        route_key: str | None = None,
    ) -> ChatResponse: ...

    def stream(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        tools: Sequence[Tool | Mapping[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_schema: Mapping[str, Any] | type | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        stop: Sequence[str] | None = None,
        policy: str | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_event: EventCallback | None = None,
        route_key: str | None = None,
    ) -> AsyncIterator[StreamEvent]: ...

    def route(
        self,
        messages: MessagesInput | ChatRequest,
        *,
        skill: str | None = None,
        data_class: str = "public",
        model: str | None = None,
        route_key: str | None = None,
    ) -> Plan: ...

    def allowed_jurisdictions(self, data_class: str) -> frozenset[str] | None:
        """Where data of ``data_class`` may go (None: anywhere); unknown class -> error."""
        ...

    def known_skills(self) -> tuple[str, ...]:
        """The skills a plan may name (the skill table's plus the catalog's)."""
        ...


@runtime_checkable
class SyncStack(AgentStack, Protocol):
    """A stack with blocking twins (``complete_sync``/``stream_sync``), for sync callers
    such as LangChain's ``invoke``: each runs on its own event loop and cleans up after."""

    def complete_sync(
        self, messages: MessagesInput | ChatRequest, **kwargs: Any
    ) -> ChatResponse: ...

    def stream_sync(
        self, messages: MessagesInput | ChatRequest, **kwargs: Any
    ) -> Iterator[StreamEvent]: ...

"""What the three adapters share besides error classification.

* :class:`LoopBound` — one SDK client per running event loop. httpx and aiohttp
  connection pools belong to the loop that created them, and the sync wrappers run
  each call on a fresh loop, so a client must never be reused across loops. A client is
  closed by ``aclose()`` or, at the latest, when its loop shuts down.
* :class:`AdapterBase` — the :class:`~hybridstack.providers.base.Provider` plumbing:
  the client cache, ``aclose``, error construction bound to this deployment and key,
  response assembly.
* :class:`ToolCallAssembler` — streamed tool-call fragments joined per index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ErrorKind, ProviderError, scrub
from hybridstack.providers._classify import make_error
from hybridstack.providers.base import Provider
from hybridstack.types import (
    ChatResponse,
    FinishReason,
    ToolCall,
    Usage,
)

log = logging.getLogger("hybridstack.providers")

C = TypeVar("C")

#: The system instruction added when a host only has JSON mode (``json_object``): the
#: schema has to travel in the prompt, and DashScope insists the word "JSON" appears.
JSON_INSTRUCTION = (
    "Reply with a single JSON object only, no prose and no code fences. "
    "The JSON must validate against this JSON schema:\n{schema}"
)


def json_instruction(schema: dict[str, Any]) -> str:
    return JSON_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))


#: Base-class names of transport failures in httpx / httpx2 / httpcore / anyio, matched by
#: name so this module imports none of them (and legacy httpx counts too).
_TRANSPORT_NAMES = frozenset(
    {
        "TransportError",
        "RequestError",
        "NetworkError",
        "ProtocolError",
        "EndOfStream",
        "BrokenResourceError",
        "ClosedResourceError",
    }
)
_TIMEOUT_NAMES = frozenset({"TimeoutException", "TimeoutError"})


def transport_code(exc: BaseException) -> str | None:
    """``"timeout"`` or ``"connection_error"`` for a transport failure, else None.

    Used for exceptions an SDK lets escape unwrapped (anthropic does not wrap httpx
    errors raised while a stream is read: a dropped connection mid-body arrives as a raw
    ``httpx2.RemoteProtocolError``).
    """
    if isinstance(exc, TimeoutError):
        return "timeout"
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _TIMEOUT_NAMES:
        return "timeout"
    if names & _TRANSPORT_NAMES or isinstance(exc, OSError | EOFError):
        return "connection_error"
    return None


class _Entry(Generic[C]):
    """One loop's client, closed at most once."""

    __slots__ = ("client", "closed", "guard", "starter")

    def __init__(self, client: C) -> None:
        self.client = client
        self.closed = False
        self.guard: AsyncGenerator[None, None] | None = None
        #: The task that starts ``guard`` (held: the loop keeps only weak task references).
        self.starter: asyncio.Task[None] | None = None

    async def close(self, closer: Callable[[C], Awaitable[None]]) -> None:
        if not self.closed:
            self.closed = True
            await closer(self.client)


async def _close_at_loop_shutdown(
    owner: LoopBound[Any], loop: asyncio.AbstractEventLoop, entry: _Entry[Any]
) -> AsyncGenerator[None, None]:
    """Suspended for the loop's lifetime; its ``finally`` closes the client.

    ``asyncio.run`` (and hybridstack's ``iterate_sync``) call ``loop.shutdown_asyncgens()``
    before closing a loop, which runs this ``finally`` while the loop still runs. So a
    client used from ``asyncio.run(provider.complete(...))`` — as every sync facade does —
    is closed properly instead of being left to a dead loop.
    """
    try:
        yield
    finally:
        owner._forget(loop, entry)
        await entry.close(owner._closer)


class LoopBound(Generic[C]):
    """A lazily built object per running event loop, closed with that loop's help.

    The last (loop, client) pair is one tuple, so the hot path is a single identity
    check and stays consistent when threads with their own loops share a provider.
    """

    def __init__(self, factory: Callable[[], C], closer: Callable[[C], Awaitable[None]]):
        self._factory = factory
        self._closer = closer
        self._last: tuple[asyncio.AbstractEventLoop, C] | None = None
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Entry[C]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        with self._lock:
            entry = self._by_loop.get(loop)
            if entry is None or entry.closed:
                # Loops closed without shutting down their async generators cannot close
                # their clients any more: forget them.
                for old in [lp for lp in self._by_loop if lp.is_closed()]:
                    del self._by_loop[old]
                entry = _Entry(self._factory())
                self._by_loop[loop] = entry
                guard = _close_at_loop_shutdown(self, loop, entry)
                entry.guard = guard
                # Start it (registering it with the loop's async-generator hooks) without
                # blocking this synchronous call: it reaches its ``yield`` on the next tick.
                entry.starter = loop.create_task(_start(guard))
            self._last = (loop, entry.client)
            return entry.client

    def _forget(self, loop: asyncio.AbstractEventLoop, entry: _Entry[C]) -> None:
        with self._lock:
            if self._by_loop.get(loop) is entry:
                del self._by_loop[loop]
            last = self._last
            if last is not None and last[0] is loop:
                self._last = None

    async def close_current(self) -> None:
        """Close the client of the running loop (if one was built)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._by_loop.pop(loop, None)
            last = self._last
            if last is not None and last[0] is loop:
                self._last = None
        if entry is not None:
            await entry.close(self._closer)
            if entry.guard is not None:
                await entry.guard.aclose()

    async def close_all(self) -> None:
        """Close this loop's client and forget the others (they belong to other loops)."""
        await self.close_current()
        with self._lock:
            self._by_loop.clear()
            self._last = None


async def _start(guard: AsyncGenerator[None, None]) -> None:
    try:
        await anext(guard)
    except StopAsyncIteration:  # closed before it started
        pass


class AdapterBase(Provider, Generic[C]):
    """Provider plumbing shared by the three adapters; subclasses build the SDK client."""

    protocol: str

    def __init__(self, deployment: Deployment, *, api_key: str, timeout_s: float | None = None):
        super().__init__(deployment, api_key=api_key, timeout_s=timeout_s)
        self._clients: LoopBound[C] = LoopBound(self._make_client, self._close_client)
        # Response fields that never change for this deployment, built once.
        self._response_fields: dict[str, Any] = {
            "deployment": deployment.id,
            "family": deployment.family,
            "model": deployment.model,
            "region": deployment.region,
            "jurisdiction": deployment.jurisdiction,
        }
        features = deployment.features
        # Deployment.features None means "as the family says"; the adapter cannot see the
        # family, so it assumes full JSON-schema support unless the deployment says less.
        self._json_schema_native = features is None or "json_schema" in features
        self._json_object_only = (
            features is not None and "json_schema" not in features and "json_object" in features
        )

    # --- client lifecycle -------------------------------------------------------------

    def _make_client(self) -> C:
        raise NotImplementedError

    async def _close_client(self, client: C) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._clients.close_all()

    # --- errors ---------------------------------------------------------------------

    def _error(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        headers: Any = None,
        partial_text: str = "",
        cause: BaseException | None = None,
    ) -> ProviderError:
        error = make_error(
            kind,
            message,
            deployment=self.deployment.id,
            provider=self.protocol,
            secret=self._api_key,
            status=status,
            code=code,
            request_id=request_id,
            headers=headers,
            partial_text=partial_text,
            cause=cause,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s: %s", self.deployment.id, error.kind, error)
        return error

    def _scrub(self, text: str) -> str:
        return scrub(text, (self._api_key,))

    # --- responses ------------------------------------------------------------------

    def _response(
        self,
        *,
        text: str,
        tool_calls: tuple[ToolCall, ...],
        finish_reason: FinishReason,
        usage: Usage,
        latency_s: float,
        request_id: str | None,
        reasoning: str | None = None,
        ttft_s: float | None = None,
    ) -> ChatResponse:
        return ChatResponse(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage,
            latency_s=latency_s,
            ttft_s=ttft_s,
            request_id=request_id,
            reasoning=reasoning or None,
            **self._response_fields,
        )

    def _tool_call(self, call_id: str | None, name: str | None, arguments: Any) -> ToolCall:
        """A ToolCall with arguments as a dict; malformed JSON is a malformed reply."""
        if isinstance(arguments, dict):
            parsed = arguments
        elif not arguments:
            parsed = {}
        else:
            try:
                parsed = json.loads(arguments)
            except ValueError as exc:
                raise self._error(
                    "retry_here",
                    "the model returned tool-call arguments that are not JSON: "
                    f"{arguments[:200]!r}",
                    code="malformed_tool_arguments",
                    cause=exc,
                ) from exc
            if not isinstance(parsed, dict):
                raise self._error(
                    "retry_here",
                    f"the model returned tool-call arguments that are not a JSON object: "
                    f"{arguments[:200]!r}",
                    code="malformed_tool_arguments",
                )
        return ToolCall(id=call_id or f"call_{name}", name=name or "", arguments=parsed)


class ToolCallAssembler:
    """Joins OpenAI-style streamed tool-call fragments (``index``, ``id``/``name`` once)."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str) -> None:
        entry = self._calls.get(index)
        if entry is None:
            self._calls[index] = [call_id, name, [arguments] if arguments else []]
            return
        if call_id and not entry[0]:
            entry[0] = call_id
        if name and not entry[1]:
            entry[1] = name
        if arguments:
            entry[2].append(arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def finish(self, adapter: AdapterBase[Any]) -> tuple[ToolCall, ...]:
        return tuple(
            adapter._tool_call(entry[0], entry[1], "".join(entry[2]))
            for _, entry in sorted(self._calls.items())
        )

"""What the three adapters share besides error classification.

* :class:`~hybridstack.providers._loop.LoopBound` (in its own module) — one SDK client
  per running event loop.
* :class:`AdapterBase` — the :class:`~hybridstack.providers.base.Provider` plumbing:
  the client cache, ``aclose``, error construction bound to this deployment and key,
  the translation skeleton every adapter's SDK-specific part plugs into, response
  assembly (also the closing :class:`~hybridstack.types.FinishEvent` of a stream).
* :class:`ToolCallAssembler` — streamed tool-call fragments joined per index.
* The OpenAI request format, which DashScope's native protocol shares:
  :func:`openai_style_options`, :func:`openai_tool_calls`, :func:`openai_finish_reason`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from hybridstack.catalog.models import Deployment
from hybridstack.errors import ErrorKind, ProviderError
from hybridstack.providers._classify import make_error
from hybridstack.providers._loop import LoopBound
from hybridstack.providers.base import Provider
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)

log = logging.getLogger("hybridstack.providers")

C = TypeVar("C")


class _Closable(Protocol):
    async def close(self) -> None: ...


#: An SDK client (or aiohttp session): closed with ``await client.close()``.
SDK = TypeVar("SDK", bound=_Closable)

#: The system instruction added when a host only has JSON mode (``json_object``): the
#: schema has to travel in the prompt, and DashScope insists the word "JSON" appears.
JSON_INSTRUCTION = (
    "Reply with a single JSON object only, no prose and no code fences. "
    "The JSON must validate against this JSON schema:\n{schema}"
)


def json_instruction(schema: dict[str, Any]) -> str:
    return JSON_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))


# --- the OpenAI request format (OpenAI, compatible hosts, DashScope native) ----------------

#: OpenAI-style finish reasons.
OPENAI_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def openai_finish_reason(raw: str | None, tool_calls: tuple[ToolCall, ...]) -> FinishReason:
    """``finish_reason`` mapped; missing means "stop", and so does anything unknown."""
    reason = OPENAI_FINISH.get(raw or "stop", "stop")
    if tool_calls and reason == "stop":
        reason = "tool_calls"  # some compatible hosts say "stop" after a tool call
    return reason


def openai_tool_calls(calls: Iterable[ToolCall]) -> list[dict[str, Any]]:
    """An assistant turn's tool calls in the ``tool_calls`` message field."""
    return [
        {
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments_json},
        }
        for c in calls
    ]


def openai_style_options(
    params: dict[str, Any],
    messages: list[dict[str, Any]],
    request: ChatRequest,
    *,
    json_object_only: bool,
) -> None:
    """Add tools, tool choice, response format, max tokens, temperature and stops.

    With ``json_object_only`` (a host with JSON mode only) the schema travels in a system
    instruction put first in ``messages``; DashScope also wants the word "JSON" there.
    """
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        params["tool_choice"] = request.tool_choice
    schema = request.response_schema
    if schema is not None:
        if json_object_only:
            messages.insert(0, {"role": "system", "content": json_instruction(schema)})
            params["response_format"] = {"type": "json_object"}
        else:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.response_schema_name,
                    "schema": schema,
                    "strict": True,
                },
            }
    if request.max_tokens is not None:
        params["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.stop:
        params["stop"] = list(request.stop)


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
#: Exceptions that, raised while a response is read, mean it lacks the expected fields.
SHAPE_ERRORS = (ValueError, KeyError, AttributeError, IndexError, TypeError)


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


class AdapterBase(Provider, Generic[SDK]):
    """Provider plumbing shared by the three adapters; subclasses build the SDK client."""

    protocol: str
    #: The SDK client class when it takes ``base_url``, ``api_key``, ``max_retries`` and
    #: ``timeout`` (openai, anthropic); otherwise the adapter overrides ``_make_client``.
    _sdk_client: Callable[..., SDK]
    #: The SDK lets raw httpx / anyio transport errors escape (openai and anthropic do
    #: while a stream is read); dashscope's own aiohttp errors go to ``_translate_sdk``.
    _unwrapped_transport: ClassVar[bool] = True
    #: The SDK client can be built on a worker thread (httpx clients need no loop;
    #: aiohttp sessions do, and are cheap to build).
    _client_off_loop: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, *, api_key: str, timeout_s: float | None = None):
        super().__init__(deployment, api_key=api_key, timeout_s=timeout_s)
        self._clients: LoopBound[SDK] = LoopBound(self._make_client, self._close_client)
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

    def _make_client(self) -> SDK:
        return self._sdk_client(
            base_url=self.deployment.base_url,
            api_key=self._api_key,
            max_retries=0,  # retries live in hybridstack's executor, once
            timeout=self.timeout_s,
        )

    async def _close_client(self, client: SDK) -> None:
        await client.close()

    async def warm_up(self) -> None:
        await self._clients.prepare(self._primed_client if self._client_off_loop else None)

    def _primed_client(self) -> SDK:
        client = self._make_client()
        self._prime(client)
        return client

    def _prime(self, client: SDK) -> None:
        """Touch what the SDK imports lazily on a client's first request (its resource
        classes), so the first request does not import on the event loop."""

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

    def _translate(
        self,
        exc: Exception,
        *,
        partial_text: str = "",
        request_id: str | None = None,
        responded: bool = False,
    ) -> ProviderError:
        """The taxonomy error for ``exc``; ``responded``: a response was being read.

        The SDK's own exceptions first (:meth:`_translate_sdk`), then raw transport
        failures the SDK let escape unwrapped (mid-stream reads), bodies that are not
        JSON, and frames without the expected fields. (Before any response the same
        shape errors mean a bug or a bad argument: fatal, like anything unknown.)
        """
        if isinstance(exc, ProviderError):
            return exc
        error = self._translate_sdk(exc, partial_text, request_id)
        if error is not None:
            return error
        transport = transport_code(exc) if self._unwrapped_transport else None
        if transport is not None:
            return self._error(
                "retry_here",
                f"transport failure: {type(exc).__name__}",
                code=transport,
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) or (
            responded and isinstance(exc, SHAPE_ERRORS)
        ):
            return self._malformed(exc, partial_text, request_id)
        return self._error(
            "fatal",
            f"unexpected {type(exc).__name__} from the {self.protocol} SDK: {exc}",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def _translate_sdk(
        self, exc: Exception, partial_text: str, request_id: str | None
    ) -> ProviderError | None:
        """The taxonomy error for one of the SDK's own exceptions, else None."""
        raise NotImplementedError

    def _timed_out(
        self, exc: BaseException, partial_text: str, request_id: str | None
    ) -> ProviderError:
        return self._error(
            "retry_here",
            f"no answer within {self.timeout_s:g} s",
            code="timeout",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def _connection_failed(
        self,
        exc: BaseException,
        culprit: BaseException | None,
        partial_text: str,
        request_id: str | None,
    ) -> ProviderError:
        """``culprit``: the lower-level error whose class name the message shows."""
        detail = f": {type(culprit).__name__}" if culprit is not None else ""
        return self._error(
            "retry_here",
            f"connection failed{detail}",
            code="connection_error",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def _malformed(
        self, exc: BaseException | None, partial_text: str, request_id: str | None
    ) -> ProviderError:
        return self._error(
            "retry_here",
            "malformed response body"
            + (f": {type(exc).__name__}: {exc}"[:300] if exc is not None else ""),
            code="malformed_response",
            request_id=request_id,
            partial_text=partial_text,
            cause=exc,
        )

    def _refused(self, request_id: str | None, partial_text: str, detail: str) -> ProviderError:
        """A 200 reply stopped by the host's content filter; ``detail`` ends the message."""
        return self._error(
            "content_refused",
            "the provider refused the content" + detail,
            status=200,
            code="content_filter",
            request_id=request_id,
            partial_text=partial_text,
        )

    def _stream_cut(self, missing: str, request_id: str | None, partial_text: str) -> ProviderError:
        """A stream that ended without its ``missing`` (finish / stop reason)."""
        return self._error(
            "retry_here",
            f"the stream ended without a {missing} (cut off)",
            code="stream_cut",
            request_id=request_id,
            partial_text=partial_text,
        )

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

    def _finished(
        self,
        *,
        text: str,
        tool_calls: tuple[ToolCall, ...],
        finish_reason: FinishReason,
        usage: Usage,
        started: float,
        ttft_s: float | None,
        request_id: str | None,
        reasoning: str,
    ) -> FinishEvent:
        """A stream's last event: the reply assembled, its latency measured from ``started``."""
        response = self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage,
            latency_s=time.perf_counter() - started,
            ttft_s=ttft_s,
            request_id=request_id,
            reasoning=reasoning,
        )
        return FinishEvent(finish_reason=finish_reason, response=response)

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

    def add(
        self, index: int, call_id: str | None, name: str | None, arguments: str
    ) -> ToolCallDelta:
        """Record one fragment; returns the stream event that reports it."""
        entry = self._calls.get(index)
        if entry is None:
            self._calls[index] = [call_id, name, [arguments] if arguments else []]
        else:
            if call_id and not entry[0]:
                entry[0] = call_id
            if name and not entry[1]:
                entry[1] = name
            if arguments:
                entry[2].append(arguments)
        return ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments)

    def __bool__(self) -> bool:
        return bool(self._calls)

    def finish(self, adapter: AdapterBase[Any]) -> tuple[ToolCall, ...]:
        return tuple(
            adapter._tool_call(entry[0], entry[1], "".join(entry[2]))
            for _, entry in sorted(self._calls.items())
        )

"""The ``dashscope`` native protocol (Alibaba Model Studio / Qwen), via ``dashscope``.

Calls ``dashscope.AioGeneration.call`` with the deployment's base URL *per call*
(``base_address=``), never touching the module-global ``dashscope.base_http_api_url``,
so deployments in Beijing, Singapore and Virginia coexist in one process.

SDK facts this relies on (dashscope 2.0.2):
* Errors are *returned*, not raised: a response (or a stream chunk) with
  ``status_code != 200`` and ``code``/``message``. Mid-stream errors arrive the same way.
  A stream frame that is not JSON comes back as status 500, code ``Unknown``.
* Only transport failures raise: aiohttp errors and ``asyncio.TimeoutError`` (and a
  non-JSON 200 body raises ``aiohttp.ContentTypeError`` / ``json.JSONDecodeError``).
  The SDK logs those at ERROR ("Request failed") before re-raising.
* The SDK resends once, immediately, on any ``aiohttp.ClientConnectionError`` before a
  response (``send_with_retry_async``), and aiohttp's ``sock_read`` timeout *is* one
  (``ServerTimeoutError``): a reset cost two upstream requests and a hung stream twice the
  timeout. Our session's middleware re-types those errors so the SDK lets them through:
  retries stay in the executor, counted and budgeted.
* ``session=`` takes our own ``aiohttp.ClientSession`` (one per event loop, closed in
  ``aclose``) instead of the SDK's process-wide per-loop pool, which is never closed.
* ``headers=`` is honoured (merged into the request headers), so ``extra_headers`` work.
* ``request_timeout`` is the total timeout for a plain call and the idle timeout
  between chunks for a stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import aiohttp
from dashscope.aigc.generation import AioGeneration
from dashscope.api_entities.dashscope_response import GenerationResponse
from dashscope.common.error import AuthenticationError as DashScopeAuthError
from dashscope.common.error import DashScopeException

from hybridstack.errors import ProviderError
from hybridstack.providers._classify import classify
from hybridstack.providers._common import (
    SHAPE_ERRORS,
    AdapterBase,
    ToolCallAssembler,
    openai_finish_reason,
    openai_style_options,
    openai_tool_calls,
)
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
    UsageEvent,
)

__all__ = ["DashScopeProvider"]

#: The end of the message of a ``content_filter`` refusal (DashScope sends no detail).
_REFUSED = " (finish_reason content_filter)"
#: DashScope sends the *string* "null" as the finish reason of every chunk but the last.
_NOT_FINISHED = (None, "", "null")


def _usage(raw: Any) -> Usage:
    if not raw:
        return Usage()
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens", 0) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=raw.get("input_tokens") or 0,
        output_tokens=raw.get("output_tokens") or 0,
        cached_input_tokens=cached or 0,
    )


def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


class _SendFailedError(Exception):
    """A transport failure before any response, re-typed so the SDK does not resend it."""

    def __init__(self, error: aiohttp.ClientConnectionError) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


async def _no_resend(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    """aiohttp client middleware: connection errors leave as :class:`_SendFailedError`."""
    try:
        return await handler(request)
    except aiohttp.ClientConnectionError as exc:
        raise _SendFailedError(exc) from exc


class DashScopeProvider(AdapterBase[aiohttp.ClientSession]):
    """Adapter for DashScope's native text-generation protocol."""

    protocol = "dashscope"
    _unwrapped_transport = False
    _client_off_loop = False

    def _make_client(self) -> aiohttp.ClientSession:
        # Our own session per loop (the SDK's shared one is never closed); trust_env as
        # the SDK does, so HTTPS_PROXY / NO_PROXY behave the same.
        try:
            return aiohttp.ClientSession(trust_env=True, middlewares=(_no_resend,))
        except TypeError:  # aiohttp < 3.12 has no client middlewares: accept the resend
            return aiohttp.ClientSession(trust_env=True)

    # --- request --------------------------------------------------------------------

    @staticmethod
    def _messages(request: ChatRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in request.messages:
            role = m.role
            if role == "tool":
                msg: dict[str, Any] = {
                    "role": "tool",
                    "content": m.text,
                    "tool_call_id": m.tool_call_id,
                }
                if m.name:
                    msg["name"] = m.name
                out.append(msg)
            elif role == "assistant" and m.all_tool_calls:
                out.append(
                    {
                        "role": "assistant",
                        "content": m.text,
                        "tool_calls": openai_tool_calls(m.all_tool_calls),
                    }
                )
            else:
                out.append({"role": role, "content": m.text})
        return out

    def _params(self, request: ChatRequest, extra_headers: dict[str, str] | None) -> dict[str, Any]:
        messages = self._messages(request)
        params: dict[str, Any] = {
            "model": self.deployment.model,
            "messages": messages,
            "api_key": self._api_key,
            "result_format": "message",
            "base_address": self.deployment.base_url,  # per call: never the module global
            "request_timeout": self.timeout_s,
            "session": self._clients.get(),
        }
        # The native protocol takes the OpenAI request format's options.
        openai_style_options(params, messages, request, json_object_only=self._json_object_only)
        if extra_headers:
            params["headers"] = dict(extra_headers)  # the SDK pops keys from it: a copy
        return params

    # --- errors ---------------------------------------------------------------------

    def _returned_error(self, response: Any, partial_text: str = "") -> ProviderError:
        """A DashScope response with ``status_code != 200`` as one taxonomy exception."""
        status = response.get("status_code")
        status = int(status) if status is not None else None  # the SDK uses HTTPStatus
        code = response.get("code") or None
        message = response.get("message") or f"DashScope returned HTTP {status}"
        if status == 500 and code == "Unknown":
            # The SDK's stand-in for a stream frame (or error body) that is not JSON.
            return self._error(
                "retry_here",
                f"malformed response body: {message[:200]}",
                code="malformed_response",
                request_id=response.get("request_id") or None,
                partial_text=partial_text,
            )
        kind = classify(status=status, code=code, message=message)
        return self._error(
            kind,
            message,
            status=status,
            code=code,
            request_id=response.get("request_id") or None,
            headers=response.get("headers"),
            partial_text=partial_text,
        )

    def _translate_sdk(
        self, exc: Exception, partial_text: str, request_id: str | None
    ) -> ProviderError | None:
        if isinstance(exc, _SendFailedError):
            exc = exc.error
        if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            return self._timed_out(exc, partial_text, request_id)
        if isinstance(exc, aiohttp.ContentTypeError | json.JSONDecodeError):
            return self._malformed(exc, partial_text, request_id)
        if isinstance(exc, aiohttp.ClientError | OSError | EOFError):
            return self._connection_failed(exc, exc, partial_text, request_id)
        if isinstance(exc, DashScopeAuthError):
            return self._error("fail_over", str(exc), code="InvalidApiKey", cause=exc)
        if isinstance(exc, DashScopeException):
            # The SDK's local checks (InputRequired, ModelRequired …): the request is wrong.
            return self._error("fatal", str(exc), code=type(exc).__name__, cause=exc)
        if isinstance(exc, SHAPE_ERRORS):
            # The SDK builds its response objects from the body: a 200 with an unexpected
            # shape fails there, before any response reaches us.
            return self._malformed(exc, partial_text, request_id)
        return None

    # --- calls ----------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> ChatResponse:
        params = self._params(request, extra_headers)
        started = time.perf_counter()
        try:
            # Without stream=True the SDK returns one response, not a generator.
            response = cast("GenerationResponse", await AioGeneration.call(**params))
        except Exception as exc:
            raise self._translate(exc) from exc
        latency = time.perf_counter() - started
        if response.get("status_code") != 200:
            raise self._returned_error(response)
        request_id = response.get("request_id") or None
        try:
            output = response["output"]
            choices = output.get("choices")
            if choices:
                choice = choices[0]
                message = choice.get("message") or {}
                finish = choice.get("finish_reason")
                text = _text(message.get("content"))
                raw_calls = message.get("tool_calls") or ()
                reasoning = message.get("reasoning_content")
            else:  # result_format "text" shape, from hosts that ignore result_format
                finish = output.get("finish_reason")
                text = output.get("text") or ""
                raw_calls, reasoning = (), None
            usage = _usage(response.get("usage"))
            tool_calls: tuple[ToolCall, ...] = tuple(
                self._tool_call(
                    c.get("id"), c["function"].get("name"), c["function"].get("arguments")
                )
                for c in raw_calls
            )
        except ProviderError:
            raise
        except Exception as exc:
            raise self._malformed(exc, "", request_id) from exc
        if finish == "content_filter":
            raise self._refused(request_id, text, _REFUSED)
        return self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=openai_finish_reason(finish, tool_calls),
            usage=usage,
            latency_s=latency,
            request_id=request_id,
            reasoning=reasoning if isinstance(reasoning, str) else None,
        )

    async def stream(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> AsyncIterator[StreamEvent]:
        params = self._params(request, extra_headers)
        params["stream"] = True
        params["incremental_output"] = True  # deltas, not cumulative text
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        thinking: list[str] = []
        tools = ToolCallAssembler()
        usage: Usage | None = None
        finish: str | None = None
        request_id: str | None = None
        chunks: Any = None
        try:
            chunks = await AioGeneration.call(**params)
            async for chunk in chunks:
                request_id = chunk.get("request_id") or request_id
                if chunk.get("status_code") != 200:
                    # An error the SDK yields instead of raising (also mid-stream).
                    raise self._returned_error(chunk, "".join(parts))
                raw_usage = chunk.get("usage")
                if raw_usage:
                    usage = _usage(raw_usage)  # cumulative: the last one is the total
                output = chunk["output"]
                choices = output.get("choices")
                if not choices:
                    continue
                choice = choices[0]
                message = choice.get("message") or {}
                text = _text(message.get("content"))
                if text:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    parts.append(text)
                    yield TextDelta(text=text)
                calls = message.get("tool_calls")
                if calls:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    for position, call in enumerate(calls):
                        index = call.get("index", position)
                        fn = call.get("function") or {}
                        name = fn.get("name") or None
                        arguments = fn.get("arguments") or ""
                        yield tools.add(index, call.get("id") or None, name, arguments)
                reasoning = message.get("reasoning_content")
                if reasoning:
                    thinking.append(reasoning)
                reason = choice.get("finish_reason")
                if reason not in _NOT_FINISHED:
                    finish = reason
        except ProviderError:
            raise
        except Exception as exc:
            raise self._translate(exc, partial_text="".join(parts), request_id=request_id) from exc
        finally:
            if chunks is not None:
                await chunks.aclose()

        text = "".join(parts)
        if finish == "content_filter":
            raise self._refused(request_id, text, _REFUSED)
        if finish is None:
            raise self._stream_cut("finish reason", request_id, text)
        if usage is not None:
            yield UsageEvent(usage=usage)
        tool_calls = tools.finish(self) if tools else ()
        yield self._finished(
            text=text,
            tool_calls=tool_calls,
            finish_reason=openai_finish_reason(finish, tool_calls),
            usage=usage or Usage(),
            started=started,
            ttft_s=ttft,
            request_id=request_id,
            reasoning="".join(thinking),
        )

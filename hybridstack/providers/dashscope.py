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
from typing import Any

import aiohttp
from dashscope.aigc.generation import AioGeneration
from dashscope.common.error import AuthenticationError as DashScopeAuthError
from dashscope.common.error import DashScopeException

from hybridstack.errors import ProviderError
from hybridstack.providers._classify import classify
from hybridstack.providers._common import AdapterBase, ToolCallAssembler, json_instruction
from hybridstack.types import (
    ChatRequest,
    ChatResponse,
    FinishEvent,
    FinishReason,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageEvent,
)

__all__ = ["DashScopeProvider"]

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
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


class SendFailedError(Exception):
    """A transport failure before any response, re-typed so the SDK does not resend it."""

    def __init__(self, error: aiohttp.ClientConnectionError) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


async def _no_resend(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    """aiohttp client middleware: connection errors leave as :class:`SendFailedError`."""
    try:
        return await handler(request)
    except aiohttp.ClientConnectionError as exc:
        raise SendFailedError(exc) from exc


class DashScopeProvider(AdapterBase[aiohttp.ClientSession]):
    """Adapter for DashScope's native text-generation protocol."""

    protocol = "dashscope"

    def _make_client(self) -> aiohttp.ClientSession:
        # Our own session per loop (the SDK's shared one is never closed); trust_env as
        # the SDK does, so HTTPS_PROXY / NO_PROXY behave the same.
        try:
            return aiohttp.ClientSession(trust_env=True, middlewares=(_no_resend,))
        except TypeError:  # aiohttp < 3.12 has no client middlewares: accept the resend
            return aiohttp.ClientSession(trust_env=True)

    async def _close_client(self, client: aiohttp.ClientSession) -> None:
        await client.close()

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
                        "tool_calls": [
                            {
                                "id": c.id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments_json},
                            }
                            for c in m.all_tool_calls
                        ],
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
            if self._json_object_only:
                # JSON mode needs the word "JSON" in the prompt; the schema goes along.
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

    def _translate(
        self, exc: Exception, *, partial_text: str = "", request_id: str | None = None
    ) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, SendFailedError):
            exc = exc.error
        if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            return self._error(
                "retry_here",
                f"no answer within {self.timeout_s:g} s",
                code="timeout",
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, aiohttp.ContentTypeError | json.JSONDecodeError):
            return self._malformed(exc, partial_text, request_id)
        if isinstance(exc, aiohttp.ClientError | OSError | EOFError):
            return self._error(
                "retry_here",
                f"connection failed: {type(exc).__name__}",
                code="connection_error",
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, DashScopeAuthError):
            return self._error("fail_over", str(exc), code="InvalidApiKey", cause=exc)
        if isinstance(exc, DashScopeException):
            # The SDK's local checks (InputRequired, ModelRequired …): the request is wrong.
            return self._error("fatal", str(exc), code=type(exc).__name__, cause=exc)
        if isinstance(exc, ValueError | KeyError | AttributeError | IndexError | TypeError):
            # The SDK builds its response objects from the body: a 200 with an unexpected
            # shape fails there.
            return self._malformed(exc, partial_text, request_id)
        return self._error(
            "fatal",
            f"unexpected {type(exc).__name__} from the dashscope SDK: {exc}",
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

    def _refused(self, request_id: str | None, partial_text: str) -> ProviderError:
        return self._error(
            "content_refused",
            "the provider refused the content (finish_reason content_filter)",
            status=200,
            code="content_filter",
            request_id=request_id,
            partial_text=partial_text,
        )

    # --- calls ----------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> ChatResponse:
        params = self._params(request, extra_headers)
        started = time.perf_counter()
        try:
            response = await AioGeneration.call(**params)
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
            raise self._refused(request_id, text)
        finish_reason = _FINISH.get(finish or "stop", "stop")
        if tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        return self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
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
                        call_id = call.get("id") or None
                        tools.add(index, call_id, name, arguments)
                        yield ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments)
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
            raise self._refused(request_id, text)
        if finish is None:
            raise self._error(
                "retry_here",
                "the stream ended without a finish reason (cut off)",
                code="stream_cut",
                request_id=request_id,
                partial_text=text,
            )
        if usage is not None:
            yield UsageEvent(usage=usage)
        tool_calls = tools.finish(self) if tools else ()
        finish_reason = _FINISH.get(finish, "stop")
        if tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        response = self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage or Usage(),
            latency_s=time.perf_counter() - started,
            ttft_s=ttft,
            request_id=request_id,
            reasoning="".join(thinking),
        )
        yield FinishEvent(finish_reason=finish_reason, response=response)

"""The ``openai`` wire protocol: OpenAI and every OpenAI-compatible host, via ``openai``.

Covers OpenAI, DeepSeek, Groq, Together, Fireworks, OpenRouter, DashScope's compatible
mode and local servers (vLLM, Ollama, llama.cpp). One ``AsyncOpenAI`` per event loop,
SDK retries off, every SDK failure translated into one taxonomy class.

SDK facts this relies on (openai 3.57):
* A non-streamed completion carries the ``x-request-id`` in ``completion._request_id``
  (set by the SDK for free); a stream exposes the HTTP response as ``stream.response``.
* An ``{"error": …}`` frame inside a stream raises a plain ``APIError`` with no status.
* A 200 body that is not JSON comes back as a ``str`` instead of a ``ChatCompletion``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageFunctionToolCall

from hybridstack.errors import ProviderError
from hybridstack.providers._classify import classify
from hybridstack.providers._common import (
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

__all__ = ["OpenAIProvider"]


def _usage(raw: Any) -> Usage:
    """OpenAI usage, with OpenAI's and DeepSeek's two ways of reporting cache hits."""
    if raw is None:
        return Usage()
    cached = 0
    details = getattr(raw, "prompt_tokens_details", None)
    if details is not None:
        cached = getattr(details, "cached_tokens", None) or 0
    if not cached:
        extra = raw.model_extra
        if extra:
            cached = extra.get("prompt_cache_hit_tokens") or 0  # DeepSeek
    return Usage(
        input_tokens=raw.prompt_tokens or 0,
        output_tokens=raw.completion_tokens or 0,
        cached_input_tokens=cached,
    )


def _detail(refusal: str | None) -> str:
    """The refusal text the model sent, as the end of the error message."""
    return f": {refusal}" if refusal else ""


def _reasoning(obj: Any) -> str | None:
    """DeepSeek/Qwen ``reasoning_content`` (or vLLM/OpenRouter ``reasoning``), if sent."""
    extra = obj.model_extra
    if not extra:
        return None
    value = extra.get("reasoning_content") or extra.get("reasoning")
    return value if isinstance(value, str) else None


class OpenAIProvider(AdapterBase[AsyncOpenAI]):
    """Adapter for the OpenAI chat-completions protocol."""

    protocol = "openai"
    _sdk_client = AsyncOpenAI

    def _prime(self, client: AsyncOpenAI) -> None:
        client.chat.completions  # noqa: B018 - a cached property that imports its module

    # --- request --------------------------------------------------------------------

    def _messages(self, request: ChatRequest) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for m in request.messages:
            role = m.role
            if role == "tool":
                out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.text})
            elif role == "assistant":
                calls = m.all_tool_calls
                if calls:
                    out.append(
                        {
                            "role": "assistant",
                            "content": m.text or None,
                            "tool_calls": openai_tool_calls(calls),
                        }
                    )
                else:
                    out.append({"role": "assistant", "content": m.text})
            else:
                out.append({"role": role, "content": m.text})
        return out

    def _params(self, request: ChatRequest, extra_headers: dict[str, str] | None) -> dict[str, Any]:
        messages = self._messages(request)
        params: dict[str, Any] = {"model": self.deployment.model, "messages": messages}
        openai_style_options(params, messages, request, json_object_only=self._json_object_only)
        if extra_headers:
            params["extra_headers"] = extra_headers
        return params

    # --- errors ---------------------------------------------------------------------

    def _translate_sdk(
        self, exc: Exception, partial_text: str, request_id: str | None
    ) -> ProviderError | None:
        if isinstance(exc, openai.APIStatusError):
            kind = classify(
                status=exc.status_code, code=exc.code, type_=exc.type, message=exc.message
            )
            return self._error(
                kind,
                exc.message,
                status=exc.status_code,
                code=exc.code or exc.type,
                request_id=exc.request_id or request_id,
                headers=exc.response.headers,
                partial_text=partial_text,
                cause=exc,
            )
        if isinstance(exc, openai.APITimeoutError):
            return self._timed_out(exc, partial_text, request_id)
        if isinstance(exc, openai.APIConnectionError):
            return self._connection_failed(exc, exc.__cause__, partial_text, request_id)
        if isinstance(exc, openai.APIResponseValidationError):
            return self._malformed(exc, partial_text, request_id)
        if isinstance(exc, openai.APIError):
            # An {"error": …} frame inside a 200 stream: no status, code/type from the body.
            kind = classify(status=None, code=exc.code, type_=exc.type, message=exc.message)
            return self._error(
                kind,
                exc.message,
                code=exc.code or exc.type,
                request_id=request_id,
                partial_text=partial_text,
                cause=exc,
            )
        return None

    # --- calls ----------------------------------------------------------------------

    async def complete(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> ChatResponse:
        params = self._params(request, extra_headers)
        client = self._clients.get()
        started = time.perf_counter()
        try:
            completion = await client.chat.completions.create(**params)
        except Exception as exc:
            raise self._translate(exc) from exc
        latency = time.perf_counter() - started
        if not isinstance(completion, ChatCompletion):
            # The SDK hands back the raw text when the body is not JSON.
            raise self._malformed(None, "", None)
        request_id = completion._request_id
        try:
            choice = completion.choices[0]
            message = choice.message
            finish = choice.finish_reason
            text = message.content or ""
            refusal = message.refusal
            raw_calls = message.tool_calls
            usage = _usage(completion.usage)
            reasoning = _reasoning(message)
        except Exception as exc:
            raise self._malformed(exc, "", request_id) from exc
        if finish == "content_filter" or refusal:
            raise self._refused(request_id, "", _detail(refusal))
        tool_calls: tuple[ToolCall, ...] = ()
        if raw_calls:
            # Only function tools are ever sent, so only function calls come back.
            calls = cast("list[ChatCompletionMessageFunctionToolCall]", raw_calls)
            tool_calls = tuple(
                self._tool_call(c.id, c.function.name, c.function.arguments) for c in calls
            )
        return self._response(
            text=text,
            tool_calls=tool_calls,
            finish_reason=openai_finish_reason(finish, tool_calls),
            usage=usage,
            latency_s=latency,
            request_id=request_id,
            reasoning=reasoning,
        )

    async def stream(
        self, request: ChatRequest, *, extra_headers: dict[str, str] | None = None
    ) -> AsyncIterator[StreamEvent]:
        params = self._params(request, extra_headers)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        client = self._clients.get()
        started = time.perf_counter()
        ttft: float | None = None
        parts: list[str] = []
        reasoning_parts: list[str] = []
        tools = ToolCallAssembler()
        usage: Usage | None = None
        finish: str | None = None
        refusal: str | None = None
        request_id: str | None = None
        sdk_stream: Any = None
        try:
            sdk_stream = await client.chat.completions.create(**params)
            request_id = sdk_stream.response.headers.get("x-request-id")
            async for chunk in sdk_stream:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                    yield UsageEvent(usage=usage)
                if not chunk.choices:  # the usage-only chunk has choices == []
                    continue
                choice = chunk.choices[0]
                delta = choice.delta
                if delta is not None:
                    text = delta.content
                    if text:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        parts.append(text)
                        yield TextDelta(text=text)
                    calls = delta.tool_calls
                    if calls:
                        if ttft is None:
                            ttft = time.perf_counter() - started
                        for position, call in enumerate(calls):
                            index = call.index if call.index is not None else position
                            fn = call.function
                            name = fn.name if fn is not None else None
                            arguments = (fn.arguments if fn is not None else None) or ""
                            yield tools.add(index, call.id, name, arguments)
                    if delta.refusal:
                        refusal = (refusal or "") + delta.refusal
                    reasoning = _reasoning(delta)
                    if reasoning:
                        reasoning_parts.append(reasoning)
                if choice.finish_reason:
                    finish = choice.finish_reason
        except Exception as exc:
            raise self._translate(
                exc,
                partial_text="".join(parts),
                request_id=request_id,
                responded=sdk_stream is not None,
            ) from exc
        finally:
            if sdk_stream is not None:
                await sdk_stream.close()

        text = "".join(parts)
        if finish == "content_filter" or refusal:
            raise self._refused(request_id, text, _detail(refusal))
        if finish is None:
            raise self._stream_cut("finish reason", request_id, text)
        tool_calls = tools.finish(self) if tools else ()
        yield self._finished(
            text=text,
            tool_calls=tool_calls,
            finish_reason=openai_finish_reason(finish, tool_calls),
            usage=usage or Usage(),
            started=started,
            ttft_s=ttft,
            request_id=request_id,
            reasoning="".join(reasoning_parts),
        )
